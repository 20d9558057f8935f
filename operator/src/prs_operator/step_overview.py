"""What `prs status NAME` shows: the step's phase and progress, then one row per shard (and
per plan, merge or copy pod) from the step's own pods. Pure: the step, its Jobs and pods as
the API returns them, and the tail of the logs of the pods that run, in; rows out."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from prs_operator.observation import PodView, controller_uid, parse_message, view_pod

ROLE_ORDER = ("plan", "reuse", "run", "merge")
MESSAGE_WIDTH = 80  # the table's last column; --output json keeps the whole message


@dataclass(frozen=True)
class PodRow:
    shard: str  # the shard's index, or the role of a plan, merge or copy pod
    pod: str
    node: str
    phase: str
    reason: str
    restarts: int  # earlier pods of this shard, plus container restarts of this one
    done: int | None  # mini-batches done (succeeded or failed); None: not known
    message: str


@dataclass(frozen=True)
class Overview:
    name: str
    namespace: str
    phase: str
    progress: str
    eta: str
    message: str
    mini_batches: Mapping[str, int] = field(default_factory=dict)
    items: Mapping[str, int] = field(default_factory=dict)
    rows: Sequence[PodRow] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "namespace": self.namespace, "phase": self.phase,
                "progress": self.progress, "eta": self.eta, "message": self.message,
                "miniBatches": dict(self.mini_batches), "items": dict(self.items),
                "pods": [asdict(row) for row in self.rows]}


def owned_pods(step: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]],
               pods: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The pods of the step's own Jobs: a Job that only shares the step's name (left by a
    deleted step of the same name) and its pods are not this step's."""
    uid = step["metadata"].get("uid", "")
    job_uids = {job["metadata"].get("uid") for job in jobs
                if controller_uid(job["metadata"]) == uid}
    return [pod for pod in pods if controller_uid(pod["metadata"]) in job_uids]


def overview(step: Mapping[str, Any], pods: Sequence[Mapping[str, Any]],
             tails: Mapping[str, str]) -> Overview:
    """STEP's status and a row per shard of PODS (the step's own); TAILS: pod name → the end
    of its log, for the counts of pods that have not ended."""
    status = step.get("status") or {}
    metadata = step["metadata"]
    return Overview(
        name=metadata["name"], namespace=metadata.get("namespace", ""),
        phase=status.get("phase") or "Pending", progress=status.get("progress") or "",
        eta=status.get("eta") or "", message=status.get("message") or "",
        mini_batches=dict(status.get("miniBatches") or {}),
        items=dict(status.get("items") or {}),
        rows=pod_rows(pods, tails))


def pod_rows(pods: Sequence[Mapping[str, Any]], tails: Mapping[str, str]) -> list[PodRow]:
    """One row per shard index and per other role, from its newest pod."""
    groups: dict[tuple[int, int, str], list[tuple[PodView, Mapping[str, Any]]]] = {}
    for body in pods:
        view = view_pod(body)
        if view.role not in ROLE_ORDER:
            continue
        index = view.index if view.role == "run" and view.index is not None else -1
        groups.setdefault((ROLE_ORDER.index(view.role), index, view.role), []).append(
            (view, body))
    rows = []
    for (_, index, role), members in sorted(groups.items()):
        members.sort(key=lambda member: (member[0].created, member[0].name))
        view, body = members[-1]
        shard = str(index) if role == "run" and index >= 0 else role
        rows.append(pod_row(shard, view, body, len(members) - 1, tails.get(view.name, "")))
    return rows


def pod_row(shard: str, view: PodView, body: Mapping[str, Any], earlier: int,
            tail: str) -> PodRow:
    restarts = earlier + sum(int(c.get("restartCount") or 0)
                             for c in (body.get("status") or {}).get("containerStatuses") or [])
    reason, message = state_of(view)
    report = view.message if view.message and "counts" in view.message else last_report(tail)
    if view.phase == "Running" and not message:
        message = last_plain_line(tail)
    return PodRow(shard=shard, pod=view.name, node=(body.get("spec") or {}).get("nodeName") or "",
                  phase=view.phase, reason=reason, restarts=restarts,
                  done=mini_batches_done(report), message=message)


def state_of(view: PodView) -> tuple[str, str]:
    """(reason, message) of the pod's state: why it waits, how it ended, or nothing."""
    if view.phase == "Pending" and not view.started:
        reason, _, message = (view.waiting or "Pending").partition(": ")
        return reason, message
    if view.phase in ("Failed", "Succeeded"):
        parsed = view.message or {}
        reason = view.reason if view.reason == "OOMKilled" else str(
            parsed.get("reason") or view.reason or view.phase)
        text = parsed.get("message") or last_plain_line(view.raw_message)
        if not text and view.phase == "Failed":
            text = f"exit code {view.exit_code}"
        return reason, str(text)
    return "", ""


def mini_batches_done(report: Mapping[str, Any] | None) -> int | None:
    counts = (report or {}).get("counts")
    if not isinstance(counts, Mapping):
        return None
    return int(counts.get("miniBatchesSucceeded", 0)) + int(counts.get("miniBatchesFailed", 0))


def last_report(tail: str) -> Mapping[str, Any] | None:
    """The newest progress report in a shard's log: the runner prints each as a JSON line."""
    for line in reversed(tail.splitlines()):
        parsed = parse_message(line.strip()) if line.lstrip().startswith("{") else None
        if parsed is not None and "counts" in parsed:
            return parsed
    return None


def last_plain_line(text: str) -> str:
    """The last line that is not a progress report: what the pod last said in words."""
    for line in reversed(text.splitlines()):
        stripped = line.strip()
        if stripped and not (stripped.startswith("{") and parse_message(stripped) is not None):
            return stripped
    return ""


COLUMNS = ("SHARD", "POD", "NODE", "PHASE", "REASON", "RESTARTS", "DONE", "MESSAGE")


def render_text(view: Overview) -> str:
    """The human form: a head of four lines, then the table (kubectl's layout)."""
    batches, items = view.mini_batches, view.items
    head = [f"{view.name} ({view.namespace}): {view.phase}"
            + (f", {view.progress} mini-batches" if view.progress else "")
            + (f", about {view.eta} left" if view.eta else "")]
    if view.message:
        head.append(f"  {view.message}")
    if batches:
        head.append(f"  mini-batches: {batches.get('succeeded', 0)} succeeded, "
                    f"{batches.get('failed', 0)} failed, {batches.get('pending', 0)} pending "
                    f"({batches.get('total', 0)} total)")
    if items:
        head.append(f"  items: {items.get('succeeded', 0)} succeeded, "
                    f"{items.get('failed', 0)} failed ({items.get('total', 0)} total)")
    if not view.rows:
        return "\n".join([*head, "  no pods (yet, or no longer: ttlSecondsAfterFinished)"])
    return "\n".join([*head, "", *table(view.rows)])


def table(rows: Sequence[PodRow]) -> list[str]:
    cells = [COLUMNS] + [
        (row.shard, row.pod, row.node or "-", row.phase, row.reason or "-", str(row.restarts),
         "-" if row.done is None else str(row.done), one_line(row.message, MESSAGE_WIDTH))
        for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS) - 1)]
    return ["   ".join([*(text.ljust(width) for text, width in zip(line, widths, strict=False)),
                        line[-1]]).rstrip() for line in cells]


def one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 3] + "..."


def render_json(view: Overview) -> str:
    return json.dumps(view.to_dict(), indent=2)
