"""One reconcile pass through the run stage: the texts users see in `kubectl get prs`, the
counts in the status, suspension, and why a run failed. The plan stage is in
test_operator_plan_stage.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from prs_operator.actions import DeleteJob, Event, SetJobSuspended
from prs_operator.conditions import rfc3339
from prs_operator.observation import JobView, PodView
from prs_operator.pass_state import Pass
from tests.unit.test_operator_status import (
    NOW,
    PLAN,
    PLANNED,
    RESULT_OK,
    Case,
    counts,
    describe,
    job,
    observe,
    pod,
)

PLAN_DONE = job("plan", complete=True)
BACKOFF = "Job has reached the specified backoff limit"
FIRST_ERROR = {"type": "ValueError", "message": "bad pixel", "traceback": "", "mini_batch": 4,
               "items": ["a.png"]}
INIT_FAILED = {"shard": 0, "status": "failed", "reason": "InitFailed",
               "message": "init() failed: RuntimeError: no GPU", "counts": {}}


def failed_pod(role: str, name: str, exit_code: int, raw: str = "",
               message: dict[str, Any] | None = None, index: int | None = None) -> PodView:
    return PodView(name, role, index, "Failed", exit_code, message, raw)


def run_pass(**fields: Any) -> Pass:
    return observe(Case("x", **fields))


def condition(result: Pass, kind: str) -> tuple[str, str, str]:
    found = [c for c in result.status["conditions"] if c["type"] == kind]
    assert len(found) == 1, result.status["conditions"]
    return found[0]["status"], found[0]["reason"], found[0]["message"]


def true_reasons(result: Pass) -> dict[str, str]:
    return {c["type"]: c["reason"] for c in result.status["conditions"] if c["status"] == "True"}


def actions(result: Pass) -> list[str]:
    return [describe(a) for a in result.actions]


# -- the run stage ----------------------------------------------------------------------------


def test_running_counts_items_shards_and_progress() -> None:
    live = {0: counts(3), 1: counts(1, failed=1, items_failed=4), 2: counts(1)}
    result = run_pass(spec={"nodeCount": 2}, status=PLANNED,
                      jobs=[PLAN_DONE, job("run", active=2, succeeded=1, failed=3)], live=live)
    status = result.status
    assert status["miniBatches"] == {"total": 10, "succeeded": 4, "failed": 1, "pending": 5}
    assert status["items"] == {"total": 100, "succeeded": 40, "failed": 4}
    assert status["progress"] == "4/10"
    assert status["shards"] == {"total": 2, "active": 2, "succeeded": 1, "failed": 3,
                                "table": [], "tableOmitted": 0}  # no pod needs a look
    assert (status["phase"], status["message"]) == ("Running", "5/10 mini-batches done")
    assert result.actions == [] and "completionTime" not in status
    assert "Suspended" not in {c["type"] for c in status["conditions"]}  # never suspended


@pytest.mark.parametrize("ended", [{"complete": True}, {"failed_reason": "FailedIndexes"}])
def test_the_shards_are_counted_once_more_when_the_run_ends(ended: dict[str, Any]) -> None:
    """Not the last running picture ("active": 2) left in the status for good."""
    result = run_pass(spec={"nodeCount": 2}, status={**PLANNED, "shards": {
        "total": 2, "active": 2, "succeeded": 0, "failed": 0, "table": [], "tableOmitted": 0}},
        jobs=[PLAN_DONE, job("run", succeeded=2 if "complete" in ended else 1,
                             failed=0 if "complete" in ended else 1, **ended)])
    shards = result.status["shards"]
    assert (shards["active"], shards["succeeded"] + shards["failed"]) == (0, 2)


def test_more_done_than_planned_leaves_nothing_pending() -> None:
    result = run_pass(status=PLANNED, jobs=[PLAN_DONE, job("run", active=1)],
                      live={0: counts(9, failed=3)})
    assert result.status["miniBatches"] == {"total": 10, "succeeded": 9, "failed": 3,
                                            "pending": 0}
    assert result.status["message"] == "12/10 mini-batches done"


@dataclass
class ReportCase:
    id: str
    pods: list[PodView]
    live: dict[int, Any]
    succeeded: int  # mini-batches counted
    node_count: int = 2


def run_pod(phase: str, index: int, message: dict[str, Any] | None) -> PodView:
    return PodView(f"s-run-{index}-{phase}", "run", index, phase, 0, message)


REPORT_CASES = [
    ReportCase("live reports of every shard", [], {0: counts(2), 1: counts(3)}, 5),
    ReportCase("a shard that has not reported yet", [], {1: counts(3)}, 3),
    ReportCase("a shard beyond nodeCount is not counted", [], {0: counts(2), 1: counts(3)}, 2,
               node_count=1),
    ReportCase("a finished shard's final counts beat its live report",
               [run_pod("Succeeded", 0, counts(4))], {0: counts(2), 1: counts(3)}, 7),
    ReportCase("the succeeded pod's counts beat a failed try's",
               [run_pod("Failed", 0, counts(1)), run_pod("Succeeded", 0, counts(4))], {}, 4),
    ReportCase("a failed try's counts beat the live report",
               [run_pod("Failed", 0, counts(1)), run_pod("Running", 0, counts(6))],
               {0: counts(2)}, 1),
    ReportCase("a termination message without counts: the live report",
               [run_pod("Failed", 0, {"status": "failed", "reason": "InitFailed"})],
               {0: counts(2)}, 2),
    ReportCase("an empty termination message: the live report",
               [run_pod("Succeeded", 0, {})], {0: counts(2)}, 2),
    ReportCase("a pod of another shard or role is not this shard's",
               [run_pod("Succeeded", 1, counts(6)),
                PodView("s-plan-x", "plan", 0, "Succeeded", 0, counts(8))], {0: counts(2)}, 8),
]


@pytest.mark.parametrize("case", REPORT_CASES, ids=[c.id for c in REPORT_CASES])
def test_which_report_counts_for_a_shard(case: ReportCase) -> None:
    result = run_pass(spec={"nodeCount": case.node_count}, status=PLANNED,
                      jobs=[PLAN_DONE, job("run", active=1)], pods=case.pods, live=case.live)
    assert result.status["miniBatches"]["succeeded"] == case.succeeded
    assert result.status["items"]["succeeded"] == case.succeeded * 10


THRESHOLD = "errorThreshold exceeded: 3 failed items > errorThreshold 2"


@pytest.mark.parametrize(("live", "pods", "message"), [
    pytest.param({0: counts(1, failed=1, items_failed=3)}, [], THRESHOLD, id="no error detail"),
    pytest.param({0: counts(1), 1: {**counts(0, failed=1, items_failed=3),
                                     "firstError": FIRST_ERROR}}, [],
                 f"{THRESHOLD}; first error: ValueError: bad pixel in mini-batch 4 (items: a.png)",
                 id="from a progress report"),
    pytest.param({0: {**counts(1), "firstError": FIRST_ERROR}},
                 [run_pod("Failed", 1, {**counts(0, failed=1, items_failed=3), "firstError": {
                     **FIRST_ERROR, "message": "later"}})],
                 f"{THRESHOLD}; first error: ValueError: bad pixel in mini-batch 4 (items: a.png)",
                 id="the lowest shard's error, from a termination message too"),
])
def test_an_error_threshold_stops_the_run(live: dict[int, Any], pods: list[PodView],
                                          message: str) -> None:
    result = run_pass(spec={"errorThreshold": 2, "nodeCount": 2}, status=PLANNED,
                      jobs=[PLAN_DONE, job("run", active=2)], pods=pods, live=live)
    assert (result.status["phase"], result.status["message"]) == ("Failed", message)
    assert condition(result, "Failed") == ("True", "ErrorThresholdExceeded", message)
    assert result.actions[0] == DeleteJob("s-run")
    assert actions(result) == ["delete s-run", "create merge"]  # the merge still reports
    assert result.events == [Event("Warning", "ErrorThresholdExceeded", message)]
    assert "completionTime" not in result.status
    assert result.status["items"]["failed"] == 3


SUM_ONLY = {0: counts(0, failed=1, items_failed=2), 1: counts(0, failed=1, items_failed=1)}


@pytest.mark.parametrize(("crossed_at", "stopped"), [
    (None, False),  # first seen: a pass is due in 10 s
    (NOW - 4, False),
    (NOW - 10, True),
])
def test_a_threshold_only_the_sum_of_the_shards_crosses_must_stay_crossed_for_10_s(
        crossed_at: float | None, stopped: bool) -> None:
    """A mini-batch two shards ran counts in both until the one that lost it to a steal
    mark reads the mark (every 0.5 s) and posts its counts again (every 3 s or so): 3
    failed items over two shards may be 2."""
    status = PLANNED if crossed_at is None else {
        **PLANNED, "thresholdCrossedTime": rfc3339(crossed_at)}
    result = run_pass(spec={"errorThreshold": 2, "nodeCount": 2}, status=status,
                      jobs=[PLAN_DONE, job("run", active=2)], live=SUM_ONLY)
    assert (result.status["phase"] == "Failed") is stopped
    assert ("delete s-run" in actions(result)) is stopped
    assert result.status["thresholdCrossedTime"] == rfc3339(crossed_at or NOW)
    if not stopped:
        assert result.recheck_in == pytest.approx(10.0 - (NOW - (crossed_at or NOW)))


def test_a_sum_back_under_the_threshold_forgets_when_it_crossed() -> None:
    status = {**PLANNED, "thresholdCrossedTime": rfc3339(NOW - 5)}
    result = run_pass(spec={"errorThreshold": 2, "nodeCount": 2}, status=status,
                      jobs=[PLAN_DONE, job("run", active=2)],
                      live={0: counts(0, failed=1, items_failed=1), 1: counts(1)})
    assert result.status["phase"] == "Running"
    assert "thresholdCrossedTime" not in result.status


def test_the_allowed_failed_share_is_of_the_planned_mini_batches() -> None:
    result = run_pass(spec={"allowedFailedPercent": 10}, status=PLANNED,
                      jobs=[PLAN_DONE, job("run", active=1)], live={0: counts(3, failed=2)})
    message = "allowedFailedPercent exceeded: 2 of 10 mini-batches failed (20.0% > 10%)"
    assert condition(result, "Failed") == ("True", "ErrorThresholdExceeded", message)


def test_a_run_job_gone_while_merging_is_not_created_again() -> None:
    result = run_pass(status=PLANNED, jobs=[PLAN_DONE, job("merge", active=1)])
    assert result.actions == []
    assert (result.status["phase"], result.status["message"]) == (
        "Merging", "merging the committed results")


def test_an_output_already_up_to_date_is_merged_without_running() -> None:
    result = run_pass(jobs=[PLAN_DONE], pods=[pod("plan", "Succeeded", {
        **PLAN, "outputSucceeded": True})])
    assert actions(result) == ["create merge"]
    assert true_reasons(result) == {"Planned": "InputListed", "Reused": "OutputUpToDate"}
    assert "shards" not in result.status


def test_a_complete_run_goes_to_the_merge_whatever_its_counts() -> None:
    result = run_pass(spec={"errorThreshold": 0}, status=PLANNED,
                      jobs=[PLAN_DONE, job("run", complete=True)],
                      live={0: counts(9, failed=1, items_failed=1)})
    assert actions(result) == ["create merge"]
    assert result.status["phase"] == "Merging" and "Failed" not in true_reasons(result)
    assert result.status["items"] == {"total": 100, "succeeded": 90, "failed": 1}


FAILED_EARLIER = {**PLANNED, "phase": "Failed", "message": THRESHOLD, "conditions": [
    *PLANNED["conditions"], {"type": "Failed", "status": "True", "reason": "ErrorThresholdExceeded",
                             "message": THRESHOLD, "lastTransitionTime": "2027-01-15T15:00:00Z",
                             "observedGeneration": 1}]}


@pytest.mark.parametrize(("run", "expected"), [
    pytest.param(job("run", active=2), ["delete s-run", "create merge"], id="still running"),
    pytest.param(job("run", failed_reason="PodFailurePolicy"), ["create merge"], id="failed"),
    pytest.param(job("run", complete=True), ["create merge"], id="complete"),
])
def test_after_a_failure_no_pod_keeps_running(run: JobView, expected: list[str]) -> None:
    result = run_pass(status=FAILED_EARLIER, jobs=[PLAN_DONE, run])
    assert actions(result) == expected
    assert (result.status["phase"], result.status["message"]) == ("Failed", THRESHOLD)
    assert result.events == []  # reported when it happened


@pytest.mark.parametrize(("pods", "job_state", "reason", "message"), [
    pytest.param([run_pod("Succeeded", 1, counts(1)),
                  failed_pod("run", "s-run-0", 1, "{}", INIT_FAILED, 0)], {},
                 "InitFailed", "init() failed: RuntimeError: no GPU", id="init failed"),
    pytest.param([failed_pod("run", "s-run-1", 137, "", None, 1),
                  failed_pod("run", "s-run-0", 1, "{}", INIT_FAILED, 0)], {},
                 "InitFailed", "init() failed: RuntimeError: no GPU",
                 id="the shard that says why, not the one killed"),
    pytest.param([failed_pod("run", "s-run-0", 1, "", {**INIT_FAILED, "reason": ""}, 0)], {},
                 "ShardFailed", "init() failed: RuntimeError: no GPU", id="no reason given"),
    pytest.param([run_pod("Succeeded", 1, counts(1)),
                  failed_pod("run", "s-run-0", 137, "x\nKilled\n", None, 0)], {},
                 "ShardFailed", "run pod s-run-0 exited with code 137: Killed", id="killed"),
    pytest.param([PodView("s-run-0", "run", 0, "Succeeded", 0, {**INIT_FAILED, "counts": None})],
                 {"failed_message": BACKOFF}, "ShardFailed",
                 f"run Job s-run failed: PodFailurePolicy {BACKOFF}", id="pods gone"),
])
def test_why_a_run_failed(pods: list[PodView], job_state: dict[str, Any], reason: str,
                          message: str) -> None:
    run = job("run", failed_reason="PodFailurePolicy", **job_state)
    result = run_pass(spec={"nodeCount": 2}, status=PLANNED, jobs=[PLAN_DONE, run], pods=pods)
    assert (result.status["phase"], result.status["message"]) == ("Failed", message)
    assert condition(result, "Failed") == ("True", reason, message)
    assert actions(result) == ["create merge"]
    assert result.events == [Event("Warning", reason, message)]
    assert "completionTime" not in result.status  # the merge finishes it


# -- suspension -------------------------------------------------------------------------------


SUSPEND, RESUME = SetJobSuspended("s-run", suspend=True), SetJobSuspended("s-run", suspend=False)


@pytest.mark.parametrize(("suspend", "run", "expected"), [
    pytest.param(True, job("run", active=1), [SUSPEND], id="asked: suspend"),
    pytest.param(True, job("run", suspended=True, suspended_by_step=True), [], id="suspended"),
    pytest.param(True, job("run", suspended=True), [], id="already suspended by Kueue"),
    pytest.param(False, job("run", suspended=True, suspended_by_step=True), [RESUME],
                 id="resume what the step suspended"),
    pytest.param(False, job("run", suspended=True), [], id="Kueue's to resume"),
    pytest.param(False, job("run", active=1), [], id="running"),
])
def test_suspend_follows_the_spec(suspend: bool, run: JobView,
                                  expected: list[SetJobSuspended]) -> None:
    result = run_pass(spec={"suspend": suspend}, status=PLANNED, jobs=[PLAN_DONE, run])
    assert result.actions == expected


@pytest.mark.parametrize(("suspend", "run", "reason"), [
    pytest.param(True, job("run", active=1), "StepSuspended", id="by the step"),
    pytest.param(True, job("run", suspended=True), "StepSuspended", id="by both"),
    pytest.param(False, job("run", suspended=True), "JobSuspended", id="by someone else"),
])
def test_a_suspended_run_says_so(suspend: bool, run: JobView, reason: str) -> None:
    result = run_pass(spec={"suspend": suspend}, status=PLANNED, jobs=[PLAN_DONE, run],
                      live={0: counts(2)})
    assert (result.status["phase"], result.status["message"]) == (
        "Suspended", "suspended while running: 2/10 mini-batches done")
    assert condition(result, "Suspended") == ("True", reason, "Job s-run is suspended")
    assert result.events == [Event("Normal", reason, "Job s-run is suspended")]


@pytest.mark.parametrize("suspend", [False, True])
@pytest.mark.parametrize("run", [
    pytest.param(job("run", suspended=True, queue="team-a"), id="waiting for admission"),
    pytest.param(job("run", active=1, queue="team-a"), id="admitted"),
])
def test_a_queued_run_job_is_kueues_alone(suspend: bool, run: JobView) -> None:
    """Under Kueue the operator neither resumes a queued Job nor suspends an admitted one:
    Kueue admits and evicts (spec.suspend still holds the plan and merge Jobs)."""
    result = run_pass(spec={"suspend": suspend}, status=PLANNED, jobs=[PLAN_DONE, run])
    assert result.actions == []
    if run.suspended:
        text = "Job s-run waits for Kueue to admit it (queue team-a)"
        assert condition(result, "Suspended") == ("True", "AwaitingAdmission", text)
        assert result.status["phase"] == "Suspended"
        assert result.status["message"].startswith(text)
    else:
        assert result.status["phase"] == "Running"


def test_a_resumed_run_clears_the_suspended_condition() -> None:
    suspended = {**PLANNED, "conditions": [*PLANNED["conditions"], {
        "type": "Suspended", "status": "True", "reason": "StepSuspended", "message": "m",
        "lastTransitionTime": "2027-01-15T09:00:00Z", "observedGeneration": 1}]}
    result = run_pass(status=suspended, jobs=[PLAN_DONE, job("run", active=1)])
    assert condition(result, "Suspended") == ("False", "Resumed", "")
    assert (result.status["phase"], result.status["message"]) == (
        "Running", "0/10 mini-batches done")
    assert result.events == []


# -- the summary users see when it is done ----------------------------------------------------


@pytest.mark.parametrize(("status", "text"), [
    pytest.param(PLANNED, "10/10 mini-batches, 98 items succeeded, 2 failed", id="run"),
    pytest.param({**PLANNED, "reusedFrom": "earlier"},
                 "10/10 mini-batches, 98 items succeeded, 2 failed (reused from earlier)",
                 id="reused"),
])
def test_the_summary_of_a_succeeded_step(status: dict[str, Any], text: str) -> None:
    result = run_pass(spec={"allowReuse": False}, status=status,
                      jobs=[PLAN_DONE, job("run", complete=True), job("merge", complete=True)],
                      pods=[pod("merge", "Succeeded", RESULT_OK)])
    assert (result.status["phase"], result.status["message"]) == ("Succeeded", text)
    assert condition(result, "Complete") == ("True", "Succeeded", text)
    assert result.events == [Event("Normal", "Succeeded", text)]



# -- activeDeadlineSeconds --------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "ends"), [
    pytest.param(None, False, id="no limit"),
    pytest.param(8 * 3600 + 1, False, id="within"),
    pytest.param(8 * 3600, True, id="reached"),  # PLANNED started 8 h before NOW
    pytest.param(60, True, id="long past"),
])
def test_a_step_past_its_deadline_fails_and_stops_its_unfinished_jobs(
    limit: int | None, ends: bool
) -> None:
    result = run_pass(spec={"activeDeadlineSeconds": limit}, status=PLANNED,
                      jobs=[PLAN_DONE, job("run", active=2, uid="r-1")], live={0: counts(3)})
    if not ends:
        assert result.status["phase"] == "Running" and result.actions == []
        return
    text = f"the step ran longer than activeDeadlineSeconds={limit}; 3/10 mini-batches done"
    assert condition(result, "Failed") == ("True", "DeadlineExceeded", text)
    assert (result.status["phase"], result.status["message"]) == ("Failed", text)
    assert result.actions == [DeleteJob("s-run", "r-1")]  # the finished plan Job stays
    assert result.status["completionTime"]


@pytest.mark.parametrize(("pending_for", "due"), [
    (25.0, 6.0),  # the waiting pod's notice is due in 6 s: sooner than the threshold's 10 s
    (1.0, 10.0),  # the threshold's is sooner than the notice's 30 s
])
def test_the_next_pass_is_due_at_the_sooner_of_what_a_pass_waits_for(
        pending_for: float, due: float) -> None:
    pending = PodView("s-run-1-x", "run", 1, "Pending", None, None, waiting="Unschedulable",
                      created=NOW - pending_for)
    result = run_pass(spec={"errorThreshold": 2, "nodeCount": 2}, status=PLANNED,
                      jobs=[PLAN_DONE, job("run", active=2)], live=SUM_ONLY, pods=[pending])
    assert result.status["phase"] == "Running"
    assert result.recheck_in == pytest.approx(due)
