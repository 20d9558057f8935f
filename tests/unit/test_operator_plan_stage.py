"""One reconcile pass through the plan stage: a new step, the plan Job, the plan's result
in the status (the Planned condition, the counts) and why a plan failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from prs_operator.actions import Event
from prs_operator.observation import JobView, PodView
from tests.unit.test_operator_running import (
    BACKOFF,
    PLAN_DONE,
    actions,
    condition,
    failed_pod,
    run_pass,
)
from tests.unit.test_operator_status import PLAN, PLANNED, job, pod

NOW_TEXT = "2027-01-15T16:00:00Z"  # NOW of test_operator_status
CODE_NOT_IN_CLUSTER = ("spec.code.sourceDirectory: a local folder does not reach the cluster; "
                       "use `prs submit` (packs it into a ConfigMap), code.configMap or code.path")


# -- a new step -------------------------------------------------------------------------------


def test_a_new_step_starts_now_with_the_conditions_kubectl_wait_needs() -> None:
    result = run_pass()
    status = result.status
    assert status["startTime"] == NOW_TEXT and status["observedGeneration"] == 1
    assert [(c["type"], c["status"], c["reason"], c["message"]) for c in status["conditions"]] == [
        ("Planned", "False", "Pending", ""), ("Complete", "False", "Pending", ""),
        ("Failed", "False", "Pending", "")]
    assert (status["phase"], status["message"]) == ("Planning", "listing the input")
    assert result.events == []
    assert "completionTime" not in status


def test_a_running_step_keeps_its_start_time_and_conditions() -> None:
    result = run_pass(status=PLANNED, jobs=[PLAN_DONE, job("run", active=1)])
    assert result.status["startTime"] == PLANNED["startTime"]
    assert condition(result, "Planned") == ("True", "InputListed", "")
    assert result.events == []  # nothing became true in this pass


def test_a_complete_step_without_completion_time_is_left_alone() -> None:
    done = {**PLANNED, "conditions": [*PLANNED["conditions"], {
        "type": "Complete", "status": "True", "reason": "Succeeded", "message": "m",
        "lastTransitionTime": "2027-01-15T09:00:00Z", "observedGeneration": 1}]}
    result = run_pass(status=done, jobs=[PLAN_DONE])
    assert result.actions == [] and result.events == []
    assert "completionTime" not in result.status


# -- the plan stage ---------------------------------------------------------------------------


@dataclass
class PlanCase:
    id: str
    jobs: list[JobView]
    pods: list[PodView] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)
    phase: str | None = None
    message: str | None = None
    actions: list[str] = field(default_factory=list)
    failed: str | None = None  # the Failed condition's reason; the step is then finished


PLAN_CASES = [
    PlanCase("no plan Job: create it", [], phase="Planning", message="listing the input",
             actions=["create plan"]),
    PlanCase("plan Job active", [job("plan", active=1)], phase="Planning",
             message="listing the input"),
    PlanCase("suspended while planning", [job("plan", active=1)], spec={"suspend": True},
             phase="Suspended", message="suspended while planning: listing the input",
             actions=["suspend s-plan"]),
    PlanCase("plan pod gone after its TTL: plan again", [PLAN_DONE], actions=["delete s-plan"]),
    PlanCase("local code", [], spec={"code": {"entryScript": "s.py", "sourceDirectory": "./src"}},
             phase="Failed", message=CODE_NOT_IN_CLUSTER, failed="CodeNotInCluster"),
    PlanCase("the plan reports why", [job("plan", failed_reason="PodFailurePolicy")],
             [pod("plan", "Failed", {"reason": "InputInvalid", "message": "no input files"})],
             phase="Failed", message="no input files", failed="InputInvalid"),
    PlanCase("a report without a reason", [job("plan", failed_reason="PodFailurePolicy")],
             [pod("plan", "Failed", {"message": "disk full"})], phase="Failed",
             message="disk full", failed="PlanFailed"),
    PlanCase("a report without a message: the pod's last line",
             [job("plan", failed_reason="PodFailurePolicy")],
             [failed_pod("plan", "s-plan-q", 2, '{"reason": "InputInvalid"}\n',
                         {"reason": "InputInvalid"})],
             phase="Failed", message='plan pod s-plan-q exited with code 2: {"reason": '
             '"InputInvalid"}', failed="InputInvalid"),
    PlanCase("a crash: the traceback's last line",
             [job("plan", failed_reason="BackoffLimitExceeded")],
             [pod("plan", "Succeeded", None),
              failed_pod("plan", "s-plan-q", 2, "Traceback:\n  x\nOSError: disk full\n\n")],
             phase="Failed", message="plan pod s-plan-q exited with code 2: OSError: disk full",
             failed="PlanFailed"),
    PlanCase("killed without a word", [job("plan", failed_reason="BackoffLimitExceeded")],
             [failed_pod("plan", "s-plan-q", 137)], phase="Failed",
             message="plan pod s-plan-q exited with code 137:", failed="PlanFailed"),
    PlanCase("the pod is gone: the Job's reason",
             [job("plan", failed_reason="BackoffLimitExceeded", failed_message=BACKOFF)],
             phase="Failed", message=f"plan Job s-plan failed: BackoffLimitExceeded {BACKOFF}",
             failed="PlanFailed"),
    PlanCase("the Job's reason alone", [job("plan", failed_reason="DeadlineExceeded")],
             [pod("run", "Failed", None)], phase="Failed",
             message="plan Job s-plan failed: DeadlineExceeded", failed="PlanFailed"),
]


@pytest.mark.parametrize("case", PLAN_CASES, ids=[c.id for c in PLAN_CASES])
def test_plan_stage(case: PlanCase) -> None:
    result = run_pass(spec=case.spec, jobs=case.jobs, pods=case.pods)
    status = result.status
    assert (status.get("phase"), status.get("message")) == (case.phase, case.message)
    assert actions(result) == case.actions
    assert condition(result, "Planned")[0] == "False"
    if case.failed:
        assert condition(result, "Failed") == ("True", case.failed, case.message)
        assert result.events == [Event("Warning", case.failed, str(case.message))]
        assert (status["completionTime"], status["duration"]) == (NOW_TEXT, "0s")
    else:
        assert condition(result, "Failed")[0] == "False" and "completionTime" not in status


@pytest.mark.parametrize(("message", "event"), [
    ("1,797 files in 180 mini-batches", "1,797 files in 180 mini-batches"),
    (None, "Planned"),  # no message: the condition's type stands in
])
def test_the_plan_result_fills_the_status_and_the_run_starts(message: str | None,
                                                              event: str) -> None:
    summary = {**PLAN, "fingerprint": "sha256:abc", "miniBatches": 180, "items": 1797,
               "message": message}
    if message is None:
        del summary["message"]
    result = run_pass(jobs=[PLAN_DONE], pods=[pod("plan", "Succeeded", summary)])
    status = result.status
    assert condition(result, "Planned") == ("True", "InputListed", message or "")
    assert status["fingerprint"] == "sha256:abc"
    assert status["miniBatches"] == {"total": 180, "succeeded": 0, "failed": 0, "pending": 180}
    assert status["items"] == {"total": 1797, "succeeded": 0, "failed": 0}
    assert status["progress"] == "0/180"
    assert (status["phase"], status["message"]) == ("Running", "0/180 mini-batches done")
    assert actions(result) == ["create run"]
    assert result.events == [Event("Normal", "InputListed", event)]
