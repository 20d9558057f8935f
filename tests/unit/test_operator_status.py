"""One reconcile pass (pure): children and reports in, status, actions and events out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from prs_operator.actions import CreateJob, DeleteJob, SetJobSuspended
from prs_operator.builders import RunnerSettings
from prs_operator.conditions import format_duration, set_condition
from prs_operator.observation import JobView, Observed, PodView, ReuseSource, view_job, view_pod
from prs_operator.pass_state import Pass
from prs_operator.reconciler import unfinished_steps
from prs_operator.status import compute_pass
from prs_runner.step.spec import apply_defaults

SETTINGS = RunnerSettings("runner:1", "http://op/v1/progress", b"key")
NOW = 1_800_028_800.0  # 2027-01-15T16:00:00Z, 8 h after PLANNED's start
PLAN = {"fingerprint": "sha256:f", "miniBatches": 10, "items": 100, "bytes": 1,
        "outputSucceeded": False, "message": "100 files in 10 mini-batches"}
PLANNED = {"fingerprint": "sha256:f", "startTime": "2027-01-15T08:00:00Z",
           "miniBatches": {"total": 10, "succeeded": 0, "failed": 0, "pending": 10},
           "items": {"total": 100, "succeeded": 0, "failed": 0},
           "conditions": [{"type": "Planned", "status": "True", "reason": "InputListed",
                           "message": "", "lastTransitionTime": "2027-01-15T08:00:00Z",
                           "observedGeneration": 1}]}
RESULT_OK = {"status": "Succeeded", "reason": "Completed", "message": "",
             "miniBatches": {"total": 10, "succeeded": 10, "failed": 0, "pending": 0},
             "items": {"total": 100, "succeeded": 98, "failed": 2},
             "output": {"uri": "pvc://d/out", "file": "parallel_run_step.txt", "rows": 98}}


def counts(succeeded: int, failed: int = 0, items_failed: int = 0) -> dict[str, Any]:
    return {"shard": 0, "counts": {"miniBatchesSucceeded": succeeded,
                                   "miniBatchesFailed": failed, "itemsSucceeded": succeeded * 10,
                                   "itemsFailed": items_failed}}


def job(role: str, **state: Any) -> JobView:
    return JobView(name=f"s-{role}", role=role, **state)


def pod(role: str, phase: str, message: dict[str, Any] | None, index: int | None = None) -> (
        PodView):
    return PodView(f"s-{role}-x", role, index, phase, 0 if phase == "Succeeded" else 1, message)


@dataclass
class Case:
    id: str
    spec: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    jobs: list[JobView] = field(default_factory=list)
    pods: list[PodView] = field(default_factory=list)
    live: dict[int, Any] = field(default_factory=dict)
    succeeded: dict[str, list[ReuseSource]] = field(default_factory=dict)
    phase: str = ""
    actions: list[str] = field(default_factory=list)  # "create plan", "delete s-run", ...
    true: list[tuple[str, str]] = field(default_factory=list)  # (condition, reason)
    final: bool = False


CASES = [
    Case("new step: plan it", phase="Planning", actions=["create plan"]),
    Case("local code cannot reach the cluster",
         spec={"code": {"entryScript": "s.py", "sourceDirectory": "./src"}},
         phase="Failed", true=[("Failed", "CodeNotInCluster")], final=True),
    Case("planning", jobs=[job("plan", active=1)], phase="Planning"),
    Case("planned: run", jobs=[job("plan", complete=True)],
         pods=[pod("plan", "Succeeded", PLAN)], phase="Running", actions=["create run"],
         true=[("Planned", "InputListed")]),
    Case("plan pod gone after TTL: plan again", jobs=[job("plan", complete=True)],
         actions=["delete s-plan"]),
    Case("bad input", jobs=[job("plan", failed_reason="PodFailurePolicy")],
         pods=[pod("plan", "Failed", {"reason": "InputInvalid", "message": "spec.input.uri: x"})],
         phase="Failed", true=[("Failed", "InputInvalid")], final=True),
    Case("identical earlier step: copy it", jobs=[job("plan", complete=True)],
         pods=[pod("plan", "Succeeded", PLAN)],
         succeeded={"sha256:f": [ReuseSource("earlier", "pvc://d/old")]},
         actions=["create reuse"], true=[("Planned", "InputListed"), ("Reused", "EarlierStep")]),
    Case("reuse disabled", spec={"allowReuse": False}, jobs=[job("plan", complete=True)],
         pods=[pod("plan", "Succeeded", PLAN)],
         succeeded={"sha256:f": [ReuseSource("earlier", "pvc://d/old")]},
         actions=["create run"], true=[("Planned", "InputListed")]),
    Case("live progress", status=PLANNED, jobs=[job("plan", complete=True), job("run", active=2)],
         live={0: counts(4)}, phase="Running"),
    Case("threshold crossed: stop now", spec={"miniBatchErrorThreshold": 1}, status=PLANNED,
         jobs=[job("plan", complete=True), job("run", active=2)], live={0: counts(3, failed=2)},
         phase="Failed", actions=["delete s-run", "create merge"],
         true=[("Failed", "ErrorThresholdExceeded")]),
    Case("run complete: merge", status=PLANNED,
         jobs=[job("plan", complete=True), job("run", complete=True)], phase="Merging",
         actions=["create merge"]),
    Case("fatal shard: failed, still merged for the report", status=PLANNED,
         jobs=[job("plan", complete=True), job("run", failed_reason="PodFailurePolicy")],
         pods=[pod("run", "Failed", {"status": "failed", "reason": "InitFailed",
                                     "message": "init() failed: RuntimeError: x",
                                     "counts": {}}, index=0)],
         phase="Failed", actions=["create merge"], true=[("Failed", "InitFailed")]),
    Case("merged", status=PLANNED, jobs=[job("plan", complete=True), job("run", complete=True),
                                         job("merge", complete=True)],
         pods=[pod("merge", "Succeeded", RESULT_OK)], phase="Succeeded",
         true=[("Complete", "Succeeded")], final=True),
    Case("merged, but the step failed", status=PLANNED,
         jobs=[job("plan", complete=True), job("run", complete=True),
               job("merge", complete=True)],
         pods=[pod("merge", "Succeeded", {**RESULT_OK, "status": "Failed",
                                          "reason": "AllMiniBatchesFailed", "message": "m"})],
         phase="Failed", true=[("Failed", "AllMiniBatchesFailed")], final=True),
    Case("suspend asked: suspend the Job", spec={"suspend": True}, status=PLANNED,
         jobs=[job("plan", complete=True), job("run", active=2)], phase="Suspended",
         actions=["suspend s-run"], true=[("Suspended", "StepSuspended")]),
    Case("resume what the step suspended", status=PLANNED,
         jobs=[job("plan", complete=True), job("run", suspended=True, suspended_by_step=True)],
         phase="Running", actions=["resume s-run"]),
    Case("a Job suspended by Kueue is left alone", status=PLANNED,
         jobs=[job("plan", complete=True), job("run", suspended=True)],
         phase="Suspended", true=[("Suspended", "JobSuspended")]),
]


def observe(case: Case) -> Pass:
    spec = apply_defaults({"code": {"entryScript": "s.py", "configMap": "c"},
                           "input": {"type": "files", "uri": "pvc://d/in"},
                           "output": {"uri": "pvc://d/out"}, **case.spec})
    step = {"metadata": {"name": "s", "namespace": "ns", "uid": "u", "generation": 1,
                         "creationTimestamp": "2027-01-15T08:00:00Z"},
            "spec": spec, "status": case.status}
    observed = Observed(step, {j.role: j for j in case.jobs}, case.pods, case.live,
                        case.succeeded, NOW)
    return compute_pass(observed, SETTINGS)


def describe(action: Any) -> str:
    if isinstance(action, CreateJob):
        return f"create {action.manifest['metadata']['labels']['parallelrun.io/role']}"
    if isinstance(action, SetJobSuspended):
        return f"{'suspend' if action.suspend else 'resume'} {action.name}"
    assert isinstance(action, DeleteJob)
    return f"delete {action.name}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_pass(case: Case) -> None:
    result = observe(case)
    status = result.status
    if case.phase:
        assert status["phase"] == case.phase, status.get("message")
    assert [describe(a) for a in result.actions] == case.actions
    true = [(c["type"], c["reason"]) for c in status["conditions"] if c["status"] == "True"
            and not (c["type"] == "Planned" and case.status is PLANNED)]  # planned before
    assert sorted(true) == sorted(case.true)
    assert ("completionTime" in status) is case.final
    kinds = {c["type"] for c in status["conditions"]}
    assert {"Planned", "Complete", "Failed"} <= kinds  # kubectl wait finds them from the start


def test_counts_come_from_live_reports_and_finished_shards() -> None:
    case = Case("x", spec={"nodeCount": 2}, status=PLANNED,
                jobs=[job("plan", complete=True), job("run", active=1)],
                pods=[pod("run", "Succeeded", counts(5), index=1)], live={0: counts(3)})
    status = observe(case).status
    assert status["miniBatches"] == {"total": 10, "succeeded": 8, "failed": 0, "pending": 2}
    assert status["progress"] == "8/10"


def test_the_merge_result_is_authoritative_and_events_follow_conditions() -> None:
    case = Case("x", status=PLANNED, jobs=[job("plan", complete=True), job("run", complete=True),
                                           job("merge", complete=True)],
                pods=[pod("merge", "Succeeded", RESULT_OK)])
    result = observe(case)
    assert result.status["items"] == RESULT_OK["items"]
    assert result.status["output"] == RESULT_OK["output"]
    assert result.status["duration"] == "8h0m0s"
    assert [(e.type, e.reason) for e in result.events] == [("Normal", "Succeeded")]


def test_threshold_message_names_the_threshold_and_the_first_error() -> None:
    report = {**counts(1, failed=3), "firstError": {
        "type": "ValueError", "message": "bad pixel", "traceback": "", "mini_batch": 4,
        "items": ["a.png"]}}
    case = Case("x", spec={"miniBatchErrorThreshold": 2}, status=PLANNED,
                jobs=[job("plan", complete=True), job("run", active=2)], live={0: report})
    message = observe(case).status["message"]
    assert "miniBatchErrorThreshold exceeded: 3 failed mini-batches > " in message
    assert "ValueError: bad pixel in mini-batch 4" in message


def test_a_finished_step_is_left_alone() -> None:
    done = {**PLANNED, "completionTime": "2027-01-15T09:00:00Z", "phase": "Succeeded"}
    result = observe(Case("x", status=done))
    assert result.actions == [] and result.events == []


def test_condition_transition_time_moves_only_when_the_status_flips() -> None:
    first = set_condition([], "Planned", True, "InputListed", "m", "t1", 1)
    same = set_condition(first, "Planned", True, "InputListed", "other", "t2", 2)
    flipped = set_condition(same, "Planned", False, "Replanning", "", "t3", 3)
    assert same[0]["lastTransitionTime"] == "t1" and same[0]["message"] == "other"
    assert flipped[0]["lastTransitionTime"] == "t3"


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.6, "1m0s"), (3725, "1h2m5s")])
def test_duration_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_views_read_job_and_pod_objects() -> None:
    job_view = view_job({"metadata": {"name": "s-run", "labels": {"parallelrun.io/role": "run"},
                                      "annotations": {"parallelrun.io/suspended-by-step": "true"}},
                         "spec": {"suspend": True},
                         "status": {"active": 2, "conditions": [
                             {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                              "message": "m"}]}})
    assert job_view == JobView("s-run", "run", active=2, failed_reason="BackoffLimitExceeded",
                               failed_message="m", suspended=True, suspended_by_step=True)
    pod_view = view_pod({"metadata": {"name": "p", "labels": {"parallelrun.io/role": "run"},
                                      "annotations": {
                                          "batch.kubernetes.io/job-completion-index": "1"}},
                         "status": {"phase": "Failed", "containerStatuses": [{"state": {
                             "terminated": {"exitCode": 3, "message": '{"status": "failed"}'}}}]}})
    assert pod_view.index == 1 and pod_view.exit_code == 3
    assert pod_view.message == {"status": "failed"}


def test_resync_visits_the_unfinished_steps_by_their_newest_status() -> None:
    done = {"status": {"completionTime": "2027-01-15T09:00:00Z"}}
    running = {"status": {"phase": "Running"}}
    steps = {("ns", "a"): [done], ("ns", "b"): [running], ("ns", "c"): [running],
             ("ns", "gone"): []}
    written = {("ns", "c"): {"completionTime": "2027-01-15T09:00:00Z"}}  # newer than the index
    assert unfinished_steps(steps, written) == [("ns", "b")]
