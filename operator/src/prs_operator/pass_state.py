"""The status one reconcile pass writes, and what the step's children say: the base of the
stage machine in status.py. Pure: conditions, phase and message, counts, suspension, the
pods that have not started, and the events of conditions that became true."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prs_operator.actions import Action, CreateJob, DeleteJob, Event, SetJobSuspended
from prs_operator.builders import (
    RunnerSettings,
    build_progress_secret,
)
from prs_operator.conditions import (
    find,
    format_duration,
    is_true,
    parse_time,
    rfc3339,
    set_condition,
)
from prs_operator.eta import eta_text
from prs_operator.observation import JobView, Observed, PodView
from prs_operator.pod_reports import (
    failure_message,
    failure_text,
    final_message,
    final_reports,
    of_role,
    oom_killed,
    oom_text,
    run_failure,
    shard_table,
)
from prs_operator.startup import (
    Waiting,
    not_started,
    recheck_in,
    startup_failure,
    waiting_text,
)
from prs_runner.output.results import ErrorInfo, first_of
from prs_runner.step.thresholds import Counts

# Status fields that move with every report or pod event; a change of these alone may wait
# for the next status write (at most one every 2 s per step). Anything else (phase,
# conditions, times, the fingerprint, the output) is written at once.
PROGRESS_FIELDS = frozenset({"miniBatches", "items", "progress", "shards", "message", "eta"})


def progress_only(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True when NEW differs from OLD in progress fields only."""
    changed = {key for key in set(old) | set(new) if old.get(key) != new.get(key)}
    return changed <= PROGRESS_FIELDS


WAITING_NOTICE_SECONDS = 30  # a pod still not started after this is worth an event
WARNINGS = frozenset({"Failed", "PodsWaiting", "CreateFailed"})


@dataclass
class Pass:
    status: dict[str, Any]
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    recheck_in: float | None = None  # seconds until a pass is due with or without an event


class PassState:
    def __init__(self, observed: Observed, settings: RunnerSettings) -> None:
        self.observed, self.settings = observed, settings
        self.step, self.spec = observed.step, observed.step["spec"]
        self.old: Mapping[str, Any] = observed.step.get("status") or {}
        status = dict(self.old)
        status["conditions"] = [dict(c) for c in self.old.get("conditions") or []]
        status["observedGeneration"] = observed.step["metadata"].get("generation", 1)
        self.result = Pass(status)
        self.now = rfc3339(observed.now)

    # -- status writing ---------------------------------------------------------------------

    @property
    def status(self) -> dict[str, Any]:
        return self.result.status

    def condition(self, kind: str, true: bool, reason: str, message: str) -> None:
        self.status["conditions"] = set_condition(
            self.status["conditions"], kind, true, reason, message, self.now,
            self.status["observedGeneration"])

    def is_true(self, kind: str) -> bool:
        return is_true(self.status["conditions"], kind)

    def show(self, phase: str, message: str) -> None:
        self.status["phase"], self.status["message"] = phase, message

    def fail(self, reason: str, message: str, final: bool) -> None:
        self.condition("Failed", True, reason, message)
        self.condition("Complete", False, reason, "the step failed")
        self.show("Failed", message)
        if final:
            self.finish()

    def fail_run(self, reason: str, message: str, final: bool) -> None:
        """A failure of the shards' work, led by the kernel's OOM kill when a shard's
        container saw one: a worker killed for memory only says it was killed by SIGKILL."""
        killed = oom_killed(self.observed.pods, "run")
        if killed is not None and not message.startswith("OOMKilled:"):
            message = f"{oom_text(killed, self.memory_limit())}; {message}"
        self.fail(reason, message, final)

    def finish(self) -> None:
        self.status.setdefault("completionTime", self.now)
        self.status["eta"] = ""  # finished: nothing left to wait for
        started = parse_time(self.status.get("startTime"))
        ended = parse_time(self.status["completionTime"])
        if started is not None and ended is not None:
            self.status["duration"] = format_duration(ended - started)

    def create(self, manifest: dict[str, Any]) -> None:
        # Its event follows a real creation; the step's token Secret comes first.
        self.result.actions.append(CreateJob(manifest, build_progress_secret(
            self.observed.step, self.settings)))

    # -- reading the children -------------------------------------------------------------------

    def pods_of(self, role: str) -> list[PodView]:
        return of_role(self.observed.pods, role)

    def final_message(self, role: str) -> Mapping[str, Any] | None:
        return final_message(self.observed.pods, role)

    def failure_message(self, role: str) -> Mapping[str, Any] | None:
        return failure_message(self.observed.pods, role)

    def pod_text(self, role: str, job: JobView) -> str:
        return failure_text(self.observed.pods, role, job, self.memory_limit())

    def memory_limit(self) -> str | None:
        limit = ((self.spec.get("resources") or {}).get("limits") or {}).get("memory")
        return str(limit) if limit else None

    def shard_counts(self) -> tuple[Counts, str]:
        """Final counts of finished shards (termination messages), live reports otherwise."""
        each, first = self.counts_of_shards()
        return sum(each, Counts()), first

    def counts_of_shards(self) -> tuple[list[Counts], str]:
        """Each reporting shard's counts, and the first error's text."""
        each, errors = [], []
        final = final_reports(self.pods_of("run"))
        for shard in range(self.spec["nodeCount"]):
            report = final.get(shard) or self.observed.live.get(shard)
            if report is None:
                continue
            each.append(Counts.from_dict(report.get("counts") or {}))
            errors.append(ErrorInfo.from_dict(report.get("firstError")))
        first = first_of(errors)
        return each, f"; first error: {first.one_line()}" if first is not None else ""

    def run_failure(self, job: JobView) -> tuple[str, str]:
        return run_failure(self.observed.pods, job, self.memory_limit())

    # -- bookkeeping ------------------------------------------------------------------------------

    def record_counts(self, counts: Counts) -> None:
        total = self.status["miniBatches"]["total"]
        done = counts.mini_batches_succeeded + counts.mini_batches_failed
        self.status["miniBatches"] = {"total": total, "succeeded": counts.mini_batches_succeeded,
                                      "failed": counts.mini_batches_failed,
                                      "pending": max(total - done, 0)}
        self.status["items"] = {"total": self.status["items"]["total"],
                                "succeeded": counts.items_succeeded,
                                "failed": counts.items_failed}
        self.status["progress"] = f"{counts.mini_batches_succeeded}/{total}"
        # Estimated when the counts move, not on every pass: a pass that only moved the
        # clock changes nothing, so it writes nothing (see PROGRESS_FIELDS).
        if self.status["miniBatches"] != self.old.get("miniBatches") or "eta" not in self.status:
            planned = find(self.status["conditions"], "Planned") or {}
            since = parse_time(planned.get("lastTransitionTime"))  # the run began then
            self.status["eta"] = eta_text(done, total, since, self.observed.now)

    def record_shards(self, job: JobView) -> None:
        rows, more = shard_table(self.pods_of("run"), self.observed.live)
        self.status["shards"] = {"total": self.spec["nodeCount"], "active": job.active,
                                 "succeeded": job.succeeded, "failed": job.failed,
                                 "table": [row.to_dict() for row in rows], "tableOmitted": more}

    def sync_suspend(self, job: JobView) -> None:
        """Suspend follows spec.suspend, but a Job suspended by someone else (Kueue) is left
        for them to resume, and a queued Job is Kueue's alone (it admits and evicts)."""
        if job.queue:
            return
        wanted = bool(self.spec.get("suspend"))
        if wanted and not job.suspended:
            self.result.actions.append(SetJobSuspended(job.name, True))
        elif not wanted and job.suspended and job.suspended_by_step:
            self.result.actions.append(SetJobSuspended(job.name, False))

    def due_in(self, seconds: float | None) -> None:
        """A pass is due in SECONDS without an event (the sooner of those asked for)."""
        if seconds is not None:
            due = self.result.recheck_in
            self.result.recheck_in = seconds if due is None else min(due, seconds)

    def show_waiting(self, job: JobView, phase: str, message: str) -> None:
        """Show an active Job's stage: suspended, or running (with the pods that have not
        started, and the end of the step once one waited past startupTimeout)."""
        if not job.suspended and self.gave_up_starting(job):
            return
        waiting = not_started(self.pods_of(job.role), self.observed.now)
        if waiting and not job.suspended:
            message = f"{message}; {waiting_text(waiting)}"
            # the next mark a waiting pod reaches with no event: the notice, or the timeout
            timeout, oldest = int(self.spec["startupTimeout"]), waiting[0].seconds
            mark = min((m for m in (WAITING_NOTICE_SECONDS, timeout) if m >= oldest),
                       default=timeout)
            self.due_in(recheck_in(waiting, mark))
        self.note_waiting([] if job.suspended else waiting)
        wanted = bool(self.spec.get("suspend")) and not job.queue
        suspended = wanted or (job.suspended and not job.suspended_by_step)  # not resuming
        if suspended and job.queue:
            text = f"Job {job.name} waits for Kueue to admit it (queue {job.queue})"
            self.condition("Suspended", True, "AwaitingAdmission", text)
            self.show("Suspended", f"{text}; {message}")
        elif suspended:
            reason = "StepSuspended" if wanted else "JobSuspended"
            self.condition("Suspended", True, reason, f"Job {job.name} is suspended")
            self.show("Suspended", f"suspended while {phase.lower()}: {message}")
        else:
            if self.is_true("Suspended"):
                self.condition("Suspended", False, "Resumed", "")
            self.show(phase, message)

    def note_waiting(self, waiting: Sequence[Waiting]) -> None:
        """PodsWaiting: True (and a Warning event) once a pod has waited WAITING_NOTICE_SECONDS
        to start, with the kubelet's or scheduler's reason; False again once none waits."""
        late = [w for w in waiting if w.seconds >= WAITING_NOTICE_SECONDS]
        if late:
            reason = late[0].why.partition(":")[0] or "Pending"
            self.condition("PodsWaiting", True, reason, waiting_text(late))
        elif self.is_true("PodsWaiting"):
            self.condition("PodsWaiting", False, "Started", "")

    def gave_up_starting(self, job: JobView) -> bool:
        waiting = not_started(self.pods_of(job.role), self.observed.now)
        failure = startup_failure(waiting, int(self.spec["startupTimeout"]))
        if failure is None:
            return False
        self.fail("PodsNotStarting", f"{job.role}: {failure}", final=True)
        self.result.actions.append(DeleteJob(job.name))
        return True

    def output_uri(self) -> str:
        return str(self.spec["output"]["uri"]).rstrip("/")

    def progress_text(self) -> str:
        batches = self.status.get("miniBatches") or {}
        return (f"{batches.get('succeeded', 0) + batches.get('failed', 0)}/"
                f"{batches.get('total', 0)} mini-batches done")

    def summary_text(self) -> str:
        batches, items = self.status.get("miniBatches") or {}, self.status.get("items") or {}
        text = (f"{batches.get('succeeded', 0)}/{batches.get('total', 0)} mini-batches, "
                f"{items.get('succeeded', 0)} items succeeded, {items.get('failed', 0)} failed")
        source = self.status.get("reusedFrom")
        return text + (f" (reused from {source})" if source else "")

    def record_events(self) -> None:
        old = self.old.get("conditions") or []
        for condition in self.status["conditions"]:
            if condition["status"] == "True" and not is_true(old, condition["type"]):
                kind = "Warning" if condition["type"] in WARNINGS else "Normal"
                self.result.events.append(
                    Event(kind, condition["reason"], condition["message"] or condition["type"]))
