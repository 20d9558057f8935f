"""One reconcile pass: the step and what exists of its children → the new status, the Jobs
to create, suspend or delete, and the events to record. Pure and level-based: the same
observation always gives the same pass, so a restarted operator simply continues.

Stages, each entered only when the previous one is done:
Planning (plan Job) → Reusing (copy an identical earlier result) or Running (Indexed Job)
→ Merging (merge Job) → Succeeded | Failed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prs_operator.actions import DeleteJob
from prs_operator.builders import (
    RunnerSettings,
    build_merge_job,
    build_plan_job,
    build_reuse_job,
    build_run_job,
)
from prs_operator.conditions import parse_time
from prs_operator.observation import Observed, ReuseSource
from prs_operator.pass_state import Pass, PassState
from prs_runner.step.thresholds import Counts, shards_crossed


def compute_pass(observed: Observed, settings: RunnerSettings) -> Pass:
    reconciler = StepPass(observed, settings)
    reconciler.run()
    reconciler.record_events()
    return reconciler.result


# How long a threshold only the sum of the shards' counts crosses must stay crossed: a
# shard reads the steal marks every 0.5 s and posts its counts at most every 3.9 s
# (execution.progress_report), twice to be sure; whole seconds, as the status has them.
SUM_CONFIRM_SECONDS = 10.0


class StepPass(PassState):
    """The stages of one pass, each entered only when the previous one is done."""

    def run(self) -> None:
        self.status.setdefault("startTime", self.now)
        for kind in ("Planned", "Complete", "Failed"):
            if not any(c["type"] == kind for c in self.status["conditions"]):
                self.condition(kind, False, "Pending", "")
        if self.is_true("Complete") or self.status.get("completionTime"):
            return
        if self.clear_stale_jobs() or self.rejected_for_good() or self.past_deadline():
            return
        if not self.is_true("Planned") and not self.plan():
            return
        if self.reuse() or self.execute():
            return
        self.merge()

    def past_deadline(self) -> bool:
        """activeDeadlineSeconds, for the whole step: its end, and every unfinished Job
        stopped (committed mini-batches stay under the output)."""
        limit = self.spec.get("activeDeadlineSeconds")
        started = parse_time(self.status.get("startTime"))
        if not limit or started is None or self.observed.now - started < limit:
            return False
        if self.is_true("Planned"):
            self.record_counts(self.shard_counts()[0])  # the last counts it will show
        self.fail("DeadlineExceeded", f"the step ran longer than activeDeadlineSeconds={limit}; "
                  f"{self.progress_text()}", final=True)
        for job in self.observed.jobs.values():
            if not job.finished:
                self.result.actions.append(DeleteJob(job.name, job.uid or None))
        return True

    def rejected_for_good(self) -> bool:
        """A Job the API server refused: CreateFailed with its words while a retry may
        help (the I/O layer backs off), the step's end when it cannot (400/422)."""
        rejection = self.observed.rejection
        created = {job.name for job in self.observed.jobs.values()}
        if rejection is None or rejection.job in created:
            if self.is_true("CreateFailed"):
                self.condition("CreateFailed", False, "Created", "")
            return False
        text = (f"the API server refused Job {rejection.job} ({rejection.code} "
                f"{rejection.reason}): {rejection.message}")
        if rejection.final:
            self.fail("JobRejected", text, final=True)
            return True
        self.condition("CreateFailed", True, rejection.reason,
                       f"{text}; retrying (attempt {rejection.attempts})")
        return False

    def clear_stale_jobs(self) -> bool:
        """Jobs that carry this step's name but belong to a deleted step of the same name are
        never counted: deleted (only that Job, by UID), then this step's own are made. One
        that belongs to nothing is someone else's: the step waits, saying so."""
        blocking = [job for job in self.observed.stale
                    if job.name == f"{self.step['metadata']['name']}-{job.role}"]
        for job in blocking:
            if job.owner_uid:
                self.result.actions.append(DeleteJob(job.name, job.uid))
        if not blocking:
            return False
        names = ", ".join(sorted(job.name for job in blocking))
        foreign = [job.name for job in blocking if not job.owner_uid]
        self.show(self.status.get("phase") or "Planning",
                  f"waiting for Job {names} of a deleted step of the same name to go" if not
                  foreign else f"Job {', '.join(sorted(foreign))} has this step's name but "
                  "belongs to no step; delete it")
        return True

    def plan(self) -> bool:
        """True once planned (this pass or before)."""
        if self.spec["code"].get("sourceDirectory"):
            self.fail("CodeNotInCluster", "spec.code.sourceDirectory: a local folder does not "
                      "reach the cluster; use `prs submit` (packs it into a ConfigMap), "
                      "code.configMap or code.path", final=True)
            return False
        job = self.observed.jobs.get("plan")
        if job is None:
            self.create(build_plan_job(self.step, self.settings))
            self.show("Planning", "listing the input")
            return False
        self.sync_suspend(job)
        if job.complete:
            summary = self.final_message("plan")
            if summary is None:  # the pod is gone (TTL): plan again, it is idempotent
                self.result.actions.append(DeleteJob(job.name))
                return False
            self.record_plan(summary)
            return True
        if job.failed_reason:
            failure = self.failure_message("plan") or {}
            self.fail(failure.get("reason", "PlanFailed"),
                      failure.get("message") or self.pod_text("plan", job), final=True)
            return False
        self.show_waiting(job, "Planning", "listing the input")
        return False

    def record_plan(self, summary: Mapping[str, Any]) -> None:
        total_batches, total_items = summary["miniBatches"], summary["items"]
        self.condition("Planned", True, "InputListed", summary.get("message", ""))
        self.status["fingerprint"] = summary["fingerprint"]
        self.status["miniBatches"] = {"total": total_batches, "succeeded": 0, "failed": 0,
                                      "pending": total_batches}
        self.status["items"] = {"total": total_items, "succeeded": 0, "failed": 0}
        self.status["progress"] = f"0/{total_batches}"

    def reuse(self) -> bool:
        """True while an earlier identical result is being copied (or has been)."""
        if not self.is_true("Reused") and not self.decide_reuse():
            return False
        source = self.status.get("reusedFrom")
        if not source:
            return False  # the output already holds the result: the merge re-reads it
        job = self.observed.jobs.get("reuse")
        if job is not None:
            self.sync_suspend(job)  # like every other Job: it follows spec.suspend
        if job is None:
            origin = self.reuse_source()
            if origin is None or origin.name != source:
                self.fail("ReuseFailed", f"step {source} is gone before its result was copied",
                          final=True)
                return True
            self.create(build_reuse_job(self.step, self.settings, origin.name,
                                        origin.output_uri))
        elif job.complete:
            result = self.final_message("reuse")
            if result is None:  # the pod is gone or not seen yet: copy again, it is idempotent
                self.result.actions.append(DeleteJob(job.name))
            else:
                self.complete_from(result)
        elif job.failed_reason:
            failure = self.failure_message("reuse") or {}
            self.fail("ReuseFailed", failure.get("message") or self.pod_text("reuse", job),
                      final=True)
        else:
            self.show_waiting(job, "Running", f"copying the result of step {source}")
        return True

    def decide_reuse(self) -> bool:
        if not self.spec.get("allowReuse") or "run" in self.observed.jobs or (
            "merge" in self.observed.jobs
        ):
            return False
        origin = self.reuse_source()
        summary = self.final_message("plan") or {}
        if origin is not None and origin.output_uri.rstrip("/") != self.output_uri():
            self.status["reusedFrom"] = origin.name
            self.condition("Reused", True, "EarlierStep",
                           f"identical to step {origin.name}: its result is copied")
            return True
        if summary.get("outputSucceeded"):
            self.condition("Reused", True, "OutputUpToDate",
                           "the output already holds the result of an identical run")
            return True
        return False

    def reuse_source(self) -> ReuseSource | None:
        """An earlier Succeeded step with this fingerprint; the one chosen before, if any."""
        own, chosen = self.step["metadata"]["name"], self.status.get("reusedFrom")
        found = [s for s in self.observed.succeeded.get(self.status.get("fingerprint", ""), ())
                 if s.name != own]
        found.sort(key=lambda s: (s.name != chosen, s.name))
        return found[0] if found else None

    def execute(self) -> bool:
        """True while the Indexed Job runs; False once the merge is due."""
        if "merge" in self.observed.jobs or self.is_true("Reused"):
            return False
        if self.status.get("runCompletionTime"):
            return False  # recorded: a run Job deleted since (ttlSecondsAfterFinished) is done
        job = self.observed.jobs.get("run")
        if self.is_true("Failed"):  # a threshold was crossed: make sure no pod keeps running
            if job is not None and not job.finished:
                self.result.actions.append(DeleteJob(job.name))
            return False
        if job is None:
            self.create(build_run_job(self.step, self.settings))
            self.show("Running", self.progress_text())
            return True
        self.sync_suspend(job)
        each, first_error = self.counts_of_shards()
        counts = sum(each, Counts())
        self.record_counts(counts)
        why = self.crossed(each)
        if why and not job.complete:
            self.fail_run("ErrorThresholdExceeded", why + first_error, final=False)
            self.result.actions.append(DeleteJob(job.name))
            return False
        self.record_shards(job)  # also the last time: no shard left "active" once it ended
        if job.complete:
            self.status["runCompletionTime"] = self.now
            return False
        if job.failed_reason:
            self.fail_run(*self.run_failure(job), final=False)
            return False
        self.show_waiting(job, "Running", self.progress_text())
        return True

    def crossed(self, each: list[Counts]) -> str | None:
        """Why the run stops now: a threshold crossed by one shard's counts, or by their
        sum for SUM_CONFIRM_SECONDS (thresholdCrossedTime; a pass is due then): a mini-batch
        two shards ran is counted by both until the one that lost it to a steal mark
        reads it and posts its counts again. The merge counts each once and decides last."""
        why, alone = shards_crossed(each, self.spec, self.status["miniBatches"]["total"])
        if not why:
            self.status.pop("thresholdCrossedTime", None)
            return None
        if alone:
            return why
        since = parse_time(self.status.setdefault("thresholdCrossedTime", self.now))
        waited = self.observed.now - (since if since is not None else self.observed.now)
        if waited >= SUM_CONFIRM_SECONDS:
            return why
        self.due_in(SUM_CONFIRM_SECONDS - waited)
        return None

    def merge(self) -> None:
        job = self.observed.jobs.get("merge")
        if job is None:
            started = parse_time(self.observed.step["metadata"].get("creationTimestamp"))
            self.create(build_merge_job(self.step, self.settings, started or self.observed.now))
            if not self.is_true("Failed"):
                self.show("Merging", "merging the committed results")
            return
        self.sync_suspend(job)
        if job.complete:
            result = self.final_message("merge")
            if result is None:  # the pod is gone or not seen yet: merge again, it is idempotent
                self.result.actions.append(DeleteJob(job.name))
            else:
                self.complete_from(result)
        elif job.failed_reason:
            if not self.is_true("Failed"):
                self.fail("MergeFailed", self.pod_text("merge", job), final=True)
            else:
                self.finish()
        elif not self.is_true("Failed"):
            self.show_waiting(job, "Merging", "merging the committed results")

    def complete_from(self, result: Mapping[str, Any]) -> None:
        """The merge (or reuse) pod's job result: the authoritative totals."""
        if "miniBatches" in result:
            self.status["miniBatches"] = dict(result["miniBatches"])
            self.status["items"] = dict(result["items"])
            self.status["progress"] = (f"{result['miniBatches']['succeeded']}/"
                                       f"{result['miniBatches']['total']}")
            output = result.get("output") or {}
            self.status["output"] = {"uri": output.get("uri", self.spec["output"]["uri"]),
                                     "file": output.get("file"), "rows": output.get("rows", 0)}
        if self.is_true("Failed"):
            self.finish()
            return
        if result.get("status") == "Succeeded":
            reason = "Reused" if self.is_true("Reused") else "Succeeded"
            self.condition("Complete", True, reason, self.summary_text())
            self.show("Succeeded", self.summary_text())
            self.finish()
        else:
            self.fail_run(result.get("reason") or "Failed",
                          result.get("message") or "the merge reported a failure", final=True)
