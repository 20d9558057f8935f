"""What the step's pods say, read for the status: the termination messages of ended pods,
the text of a failure (an OOM kill with the memory limit), and the per-shard table of the
shards that need a look. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prs_operator.observation import JobView, PodView

MAX_TABLE_ROWS = 20  # shards listed in status.shards.table; the rest are counted


def of_role(pods: Sequence[PodView], role: str) -> list[PodView]:
    return [p for p in pods if p.role == role]


def final_message(pods: Sequence[PodView], role: str) -> Mapping[str, Any] | None:
    for pod in of_role(pods, role):
        if pod.phase == "Succeeded" and pod.message is not None:
            return pod.message
    return None


def failure_message(pods: Sequence[PodView], role: str) -> Mapping[str, Any] | None:
    for pod in of_role(pods, role):
        if pod.phase == "Failed" and pod.message is not None:
            return pod.message
    return None


def failure_text(pods: Sequence[PodView], role: str, job: JobView,
                 memory_limit: str | None) -> str:
    """Why the role's Job failed, in the words of its first failed pod."""
    for pod in of_role(pods, role):
        if pod.phase == "Failed" and pod.reason == "OOMKilled":
            return oom_text(pod, memory_limit)
        if pod.phase == "Failed":
            text = pod.raw_message.strip().splitlines()
            parsed = pod.message or {}
            tail = text[-1] if text else str(parsed.get("message") or parsed.get("error") or "")
            return f"{role} pod {pod.name} exited with code {pod.exit_code}: {tail}".strip()
    return f"{role} Job {job.name} failed: {job.failed_reason} {job.failed_message}".strip()


def oom_text(pod: PodView, memory_limit: str | None) -> str:
    within = f" (resources.limits.memory={memory_limit})" if memory_limit else ""
    return (f"OOMKilled: {pod.role} pod {pod.name} used more memory than its "
            f"limit{within}; raise the limit or use less memory per process")


def oom_killed(pods: Sequence[PodView], role: str) -> PodView | None:
    """The first pod of ROLE whose container saw the kernel kill a process for memory. The
    shard's own process may live on (the OOM killer picks the largest process, most often a
    worker): its container then ends with its own exit code, even 0, and reason OOMKilled."""
    return next((pod for pod in of_role(pods, role) if pod.reason == "OOMKilled"), None)


def run_failure(pods: Sequence[PodView], job: JobView,
                memory_limit: str | None) -> tuple[str, str]:
    for pod in of_role(pods, "run"):
        message = pod.message or {}
        if pod.phase == "Failed" and message.get("status") == "failed":
            return str(message.get("reason") or "ShardFailed"), str(message.get("message"))
    return "ShardFailed", failure_text(pods, "run", job, memory_limit)


def final_reports(pods: Sequence[PodView]) -> dict[int, Mapping[str, Any]]:
    """Shard index → the counts its pods reported when they ended: a Succeeded pod's over a
    Failed one's (a retried index has both). One pass: a reconcile stays linear in pods."""
    found: dict[int, Mapping[str, Any]] = {}
    succeeded: set[int] = set()
    for pod in pods:
        message = pod.message
        if pod.index is None or not message or "counts" not in message:
            continue
        if pod.phase == "Succeeded" and pod.index not in succeeded:
            found[pod.index] = message
            succeeded.add(pod.index)
        elif pod.phase == "Failed" and pod.index not in found:
            found[pod.index] = message
    return found


@dataclass(frozen=True)
class ShardRow:
    shard: int
    pod: str
    phase: str
    reason: str
    restarts: int  # pods of this shard before the newest one
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"shard": self.shard, "pod": self.pod, "phase": self.phase,
                "reason": self.reason, "restarts": self.restarts, "message": self.message}


def shard_table(run_pods: Sequence[PodView], live: Mapping[int, Mapping[str, Any]]
                ) -> tuple[list[ShardRow], int]:
    """One row per shard that needs a look (waiting to start, failed, or retried), from its
    newest pod, at most MAX_TABLE_ROWS of them; and how many more there were."""
    by_shard: dict[int, list[PodView]] = {}
    for pod in run_pods:
        if pod.index is not None:
            by_shard.setdefault(pod.index, []).append(pod)
    rows = []
    for shard in sorted(by_shard):
        pods = sorted(by_shard[shard], key=lambda p: (p.created, p.name))
        row = shard_row(shard, pods[-1], len(pods) - 1, live.get(shard))
        if row is not None:
            rows.append(row)
    return rows[:MAX_TABLE_ROWS], max(len(rows) - MAX_TABLE_ROWS, 0)


def shard_row(shard: int, pod: PodView, restarts: int,
              report: Mapping[str, Any] | None) -> ShardRow | None:
    if pod.phase == "Pending" and not pod.started:
        reason, _, message = (pod.waiting or "Pending").partition(": ")
        return ShardRow(shard, pod.name, "Pending", reason, restarts, message)
    if pod.phase == "Failed":
        parsed = pod.message or {}
        reason = pod.reason if pod.reason == "OOMKilled" else str(
            parsed.get("reason") or pod.reason or "Error")
        message = str(parsed.get("message") or f"exit code {pod.exit_code}")
        return ShardRow(shard, pod.name, "Failed", reason, restarts, message[:300])
    if restarts == 0:
        return None  # running or done on its first pod: nothing to look at
    counts = (report or pod.message or {}).get("counts") or {}
    done = f"{counts.get('miniBatchesSucceeded', 0)} mini-batches done" if counts else ""
    return ShardRow(shard, pod.name, pod.phase, "Retried", restarts, done)
