"""One reconcile pass through the later stages (pure): reusing an identical earlier result,
merging, and how a step ends — its phase and message, the Jobs asked for, its conditions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from prs_operator.actions import CreateJob
from prs_operator.observation import JobView, Observed, PodView, ReuseSource
from prs_operator.pass_state import Pass
from prs_operator.status import compute_pass
from prs_runner.step.spec import apply_defaults
from tests.unit.test_operator_status import (
    NOW,
    PLAN,
    PLANNED,
    RESULT_OK,
    SETTINGS,
    describe,
    job,
    pod,
)

NOW_TEXT = "2027-01-15T16:00:00Z"  # NOW; PLANNED started 8 h before
EARLIER = ReuseSource("earlier", "pvc://old/out")
PLAN_DONE, RUN_DONE = job("plan", complete=True), job("run", complete=True)
PLAN_POD = pod("plan", "Succeeded", PLAN)
UP_TO_DATE = pod("plan", "Succeeded", {**PLAN, "outputSucceeded": True})
BACKOFF = "Job has reached the specified backoff limit"
STALE = ("status.reusedFrom: earlier at pvc://old/out no longer holds a succeeded result "
         "with fingerprint sha256:f")
NO_SPACE = "OSError: [Errno 28] No space left on device"
TRACEBACK = f"Traceback (most recent call last):\n  File \"x.py\", line 1\n{NO_SPACE}\n"
MISMATCH = "mini-batch 3 has columns ['a', 'b'], mini-batch 0 has ['a']"
THRESHOLD = "miniBatchErrorThreshold exceeded: 3 failed mini-batches > 1"
SUMMARY = "10/10 mini-batches, 98 items succeeded, 2 failed"
COPYING_TEXT = "copying the result of step earlier"
MERGING_TEXT = "merging the committed results"
GONE = "step earlier is gone before its result was copied"


def condition(kind: str, true: bool, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": "True" if true else "False", "reason": reason,
            "message": message, "lastTransitionTime": "2027-01-15T08:10:00Z",
            "observedGeneration": 1}


COPYING = {**PLANNED, "reusedFrom": "earlier", "conditions": [
    *PLANNED["conditions"],
    condition("Reused", True, "EarlierStep", "identical to step earlier: its result is copied")]}
STOPPED = {**PLANNED, "phase": "Failed", "message": THRESHOLD, "conditions": [
    *PLANNED["conditions"], condition("Complete", False, "ErrorThresholdExceeded",
                                      "the step failed"),
    condition("Failed", True, "ErrorThresholdExceeded", THRESHOLD)]}
RESULT_REUSED = {**RESULT_OK, "reusedFrom": "earlier"}


def failed_pod(role: str, message: dict[str, Any] | None, raw: str = "", name: str = "a",
               exit_code: int = 1) -> PodView:
    return PodView(f"s-{role}-{name}", role, None, "Failed", exit_code, message, raw)


def step_pass(*, status: Mapping[str, Any] | None = None, jobs: list[JobView] | None = None,
              pods: list[PodView] | None = None,
              succeeded: dict[str, list[ReuseSource]] | None = None,
              spec: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
              ) -> Pass:
    full_spec = apply_defaults({"code": {"entryScript": "s.py", "configMap": "c"},
                                "input": {"type": "files", "uri": "pvc://d/in"},
                                "output": {"uri": "pvc://d/out"}, **(spec or {})})
    known = {"name": "s", "namespace": "ns", "uid": "u", "generation": 1,
             "creationTimestamp": "2027-01-15T08:00:00Z", **(metadata or {})}
    step = {"metadata": {k: v for k, v in known.items() if v is not None},  # None: absent
            "spec": full_spec, "status": dict(status or {})}
    observed = Observed(step, {j.role: j for j in jobs or []}, pods or [], {}, succeeded or {},
                        NOW)
    return compute_pass(observed, SETTINGS)


def find(result: Pass, kind: str) -> tuple[str, str, str]:
    found = [c for c in result.status["conditions"] if c["type"] == kind]
    assert len(found) == 1, result.status["conditions"]
    return found[0]["status"], found[0]["reason"], found[0]["message"]


def command_of(result: Pass) -> list[str]:
    [action] = result.actions
    assert isinstance(action, CreateJob)
    command: list[str] = action.manifest["spec"]["template"]["spec"]["containers"][0]["command"]
    return command


@dataclass
class Stage:
    id: str
    status: Mapping[str, Any]
    jobs: list[JobView]
    pods: list[PodView] = field(default_factory=list)
    succeeded: list[ReuseSource] = field(default_factory=list)  # under this fingerprint
    spec: dict[str, Any] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    phase: str | None = None  # with message: what `kubectl get prs` shows
    message: str | None = None
    true: dict[str, str] = field(default_factory=dict)  # condition → reason, but Planned
    reused_from: str | None = None
    final: bool = False


SAME_OUTPUT = [("pvc://d/out", "pvc://d/out/"), ("pvc://d/out/", "pvc://d/out"),
               ("pvc://d/X", "pvc://d/X/"), ("pvc://d/X/", "pvc://d/X")]

DECIDING = [
    Stage("identical earlier step: copy its result", PLANNED, [PLAN_DONE], [PLAN_POD],
          [EARLIER], actions=["create reuse"], true={"Reused": "EarlierStep"},
          reused_from="earlier"),
    Stage("several identical steps: the first by name, never itself", PLANNED, [PLAN_DONE],
          [PLAN_POD], [ReuseSource("u", "pvc://u/out"), ReuseSource("s", "pvc://s-old/out"),
                       ReuseSource("t", "pvc://t/out")],
          actions=["create reuse"], true={"Reused": "EarlierStep"}, reused_from="t"),
    *[Stage(f"an earlier step wrote to this output ({ours} vs {theirs}): merge it again",
            PLANNED, [PLAN_DONE], [UP_TO_DATE], [ReuseSource("earlier", theirs)],
            spec={"output": {"uri": ours}}, actions=["create merge"], phase="Merging",
            message=MERGING_TEXT, true={"Reused": "OutputUpToDate"})
      for ours, theirs in SAME_OUTPUT],
    Stage("an earlier step wrote to this output, which no longer holds it: run", PLANNED,
          [PLAN_DONE], [PLAN_POD], [ReuseSource("earlier", "pvc://d/out")],
          actions=["create run"], phase="Running", message="0/10 mini-batches done"),
    Stage("the output already holds the result: merge it again", PLANNED, [PLAN_DONE],
          [UP_TO_DATE], actions=["create merge"], phase="Merging", message=MERGING_TEXT,
          true={"Reused": "OutputUpToDate"}),
    Stage("reuse disabled: run even if the output holds the result", PLANNED, [PLAN_DONE],
          [UP_TO_DATE], [EARLIER], spec={"allowReuse": False}, actions=["create run"]),
    Stage("an identical step appears while running: keep running", PLANNED,
          [PLAN_DONE, job("run", active=1)], [UP_TO_DATE], [EARLIER], phase="Running",
          message="0/10 mini-batches done"),
    Stage("an identical step appears while merging: keep merging", PLANNED,
          [PLAN_DONE, job("merge", active=1)], [UP_TO_DATE], [EARLIER], phase="Merging",
          message=MERGING_TEXT),
]

REUSED = {"Reused": "EarlierStep"}
FAILED_REUSE = {"Reused": "EarlierStep", "Failed": "ReuseFailed"}
COPY_FAILED = job("reuse", failed_reason="BackoffLimitExceeded", failed_message=BACKOFF)
COPYING_STAGES = [
    Stage("copying", COPYING, [PLAN_DONE, job("reuse", active=1)], [], [EARLIER],
          phase="Running", message=COPYING_TEXT, true=REUSED),
    Stage("copying, suspended", COPYING, [PLAN_DONE, job("reuse", active=1)], [], [EARLIER],
          spec={"suspend": True}, actions=["suspend s-reuse"], phase="Suspended",
          message=f"suspended while running: {COPYING_TEXT}",
          true={**REUSED, "Suspended": "StepSuspended"}),
    Stage("a copy created suspended is resumed with the step", COPYING,
          [PLAN_DONE, job("reuse", suspended=True, suspended_by_step=True)], [], [EARLIER],
          actions=["resume s-reuse"], phase="Running", message=COPYING_TEXT, true=REUSED),
    Stage("the earlier step is deleted during the copy: the copy goes on", COPYING,
          [PLAN_DONE, job("reuse", active=1)], phase="Running", message=COPYING_TEXT,
          true=REUSED),
    Stage("no copy yet: the chosen step is kept though another sorts first", COPYING,
          [PLAN_DONE], [], [ReuseSource("aaa", "pvc://a/out"), EARLIER],
          actions=["create reuse"], true=REUSED),
    Stage("the chosen step is gone before the copy", COPYING, [PLAN_DONE], phase="Failed",
          message=GONE, true=FAILED_REUSE, final=True),
    Stage("the chosen step is gone, another identical one exists: fail, do not switch",
          COPYING, [PLAN_DONE], [], [ReuseSource("another", "pvc://another/out")],
          phase="Failed", message=GONE, true=FAILED_REUSE, final=True),
    Stage("copied: the copied totals, complete as Reused", COPYING,
          [PLAN_DONE, job("reuse", complete=True)], [pod("reuse", "Succeeded", RESULT_REUSED)],
          phase="Succeeded", message=f"{SUMMARY} (reused from earlier)",
          true={**REUSED, "Complete": "Reused"}, final=True),
    Stage("copied on a retry: the succeeded pod's result counts", COPYING,
          [PLAN_DONE, job("reuse", complete=True)],
          [failed_pod("reuse", {"reason": "ReuseFailed", "message": STALE}),
           pod("reuse", "Succeeded", RESULT_REUSED)], phase="Succeeded",
          message=f"{SUMMARY} (reused from earlier)", true={**REUSED, "Complete": "Reused"},
          final=True),
    Stage("copied, but its pod is not seen: copy again", COPYING,
          [PLAN_DONE, job("reuse", complete=True)], actions=["delete s-reuse"], true=REUSED),
    Stage("the copy says why it failed", COPYING, [PLAN_DONE, COPY_FAILED],
          [failed_pod("reuse", {"reason": "ReuseFailed", "message": STALE}, exit_code=3)],
          phase="Failed", message=STALE, true=FAILED_REUSE, final=True),
    Stage("a crashed copy, then one that says why: the reason wins", COPYING,
          [PLAN_DONE, COPY_FAILED],
          [failed_pod("reuse", None, TRACEBACK),
           failed_pod("reuse", {"reason": "ReuseFailed", "message": STALE}, name="b")],
          phase="Failed", message=STALE, true=FAILED_REUSE, final=True),
    Stage("the copy crashed: its last line", COPYING, [PLAN_DONE, COPY_FAILED],
          [failed_pod("reuse", None, TRACEBACK)], phase="Failed",
          message=f"reuse pod s-reuse-a exited with code 1: {NO_SPACE}", true=FAILED_REUSE,
          final=True),
    Stage("the copy failed and its pod is gone: the Job's reason", COPYING,
          [PLAN_DONE, COPY_FAILED], phase="Failed",
          message=f"reuse Job s-reuse failed: BackoffLimitExceeded {BACKOFF}",
          true=FAILED_REUSE, final=True),
]

MERGE_FAILED = job("merge", failed_reason="BackoffLimitExceeded", failed_message=BACKOFF)
MERGE_DONE = job("merge", complete=True)
STOPPED_TRUE = {"Failed": "ErrorThresholdExceeded"}
MERGING = [
    Stage("run complete: merge", PLANNED, [PLAN_DONE, RUN_DONE], actions=["create merge"],
          phase="Merging", message=MERGING_TEXT),
    Stage("merging", PLANNED, [PLAN_DONE, RUN_DONE, job("merge", active=1)], phase="Merging",
          message=MERGING_TEXT),
    Stage("merging, suspended", PLANNED, [PLAN_DONE, RUN_DONE, job("merge", active=1)],
          spec={"suspend": True}, actions=["suspend s-merge"], phase="Suspended",
          message=f"suspended while merging: {MERGING_TEXT}",
          true={"Suspended": "StepSuspended"}),
    Stage("merged", PLANNED, [PLAN_DONE, RUN_DONE, MERGE_DONE],
          [pod("merge", "Succeeded", RESULT_OK)], phase="Succeeded", message=SUMMARY,
          true={"Complete": "Succeeded"}, final=True),
    Stage("merged, but its pod is not seen: merge again", PLANNED,
          [PLAN_DONE, RUN_DONE, MERGE_DONE], actions=["delete s-merge"]),
    Stage("the merge found mismatched columns", PLANNED, [PLAN_DONE, RUN_DONE, MERGE_DONE],
          [pod("merge", "Succeeded", {**RESULT_OK, "status": "Failed",
                                      "reason": "AppendRowSchemaMismatch", "message": MISMATCH})],
          phase="Failed", message=MISMATCH, true={"Failed": "AppendRowSchemaMismatch"},
          final=True),
    Stage("the merge failed without saying why", PLANNED, [PLAN_DONE, RUN_DONE, MERGE_DONE],
          [pod("merge", "Succeeded", {"status": "Failed"})], phase="Failed",
          message="the merge reported a failure", true={"Failed": "Failed"}, final=True),
    Stage("the merge pod crashed: MergeFailed with its last line", PLANNED,
          [PLAN_DONE, RUN_DONE, MERGE_FAILED], [failed_pod("merge", None, TRACEBACK)],
          phase="Failed", message=f"merge pod s-merge-a exited with code 1: {NO_SPACE}",
          true={"Failed": "MergeFailed"}, final=True),
    Stage("the merge Job failed and its pod is gone", PLANNED,
          [PLAN_DONE, RUN_DONE, MERGE_FAILED], phase="Failed",
          message=f"merge Job s-merge failed: BackoffLimitExceeded {BACKOFF}",
          true={"Failed": "MergeFailed"}, final=True),
    # stopped at a threshold: the run Job is deleted, the merge still writes the report
    Stage("stopped: merge, the failure stays shown", STOPPED, [PLAN_DONE],
          actions=["create merge"], phase="Failed", message=THRESHOLD, true=STOPPED_TRUE),
    Stage("stopped, merging: the failure stays shown", STOPPED,
          [PLAN_DONE, job("merge", active=1)], phase="Failed", message=THRESHOLD,
          true=STOPPED_TRUE),
    Stage("stopped, merged: finished, the first failure kept", STOPPED, [PLAN_DONE, MERGE_DONE],
          [pod("merge", "Succeeded", {**RESULT_OK, "status": "Failed", "reason": "ShardFailed",
                                      "message": "shard(s) 0 did not finish"})],
          phase="Failed", message=THRESHOLD, true=STOPPED_TRUE, final=True),
    Stage("stopped, the merge pod crashed: finished, the first failure kept", STOPPED,
          [PLAN_DONE, MERGE_FAILED], [failed_pod("merge", None, TRACEBACK)], phase="Failed",
          message=THRESHOLD, true=STOPPED_TRUE, final=True),
]


def run_stage(stage: Stage) -> Pass:
    return step_pass(status=stage.status, jobs=stage.jobs, pods=stage.pods,
                     succeeded={"sha256:f": stage.succeeded}, spec=stage.spec)


@pytest.mark.parametrize("stage", DECIDING + COPYING_STAGES + MERGING,
                         ids=[s.id for s in DECIDING + COPYING_STAGES + MERGING])
def test_stage(stage: Stage) -> None:
    result = run_stage(stage)
    status = result.status
    assert [describe(a) for a in result.actions] == stage.actions
    if stage.phase is not None:
        assert (status.get("phase"), status.get("message")) == (stage.phase, stage.message)
    true = {c["type"]: c["reason"] for c in status["conditions"]
            if c["status"] == "True" and c["type"] != "Planned"}
    assert true == stage.true
    assert status.get("reusedFrom") == (stage.reused_from or stage.status.get("reusedFrom"))
    assert ("completionTime" in status) is stage.final
    if stage.final:
        assert status["completionTime"] == NOW_TEXT and status["duration"] == "8h0m0s"


@pytest.mark.parametrize(("plan", "sources", "reason", "message"), [
    (PLAN_POD, [EARLIER], "EarlierStep", "identical to step earlier: its result is copied"),
    (UP_TO_DATE, [], "OutputUpToDate", "the output already holds the result of an identical run"),
], ids=["earlier step", "output up to date"])
def test_the_reused_condition_says_where_the_result_comes_from(
    plan: PodView, sources: list[ReuseSource], reason: str, message: str
) -> None:
    result = step_pass(status=PLANNED, jobs=[PLAN_DONE], pods=[plan],
                       succeeded={"sha256:f": sources})
    assert find(result, "Reused") == ("True", reason, message)
    assert [(e.type, e.reason, e.message) for e in result.events] == [
        ("Normal", reason, message)]


@pytest.mark.parametrize(("status", "sources"), [
    (PLANNED, [EARLIER]),
    (COPYING, [ReuseSource("aaa", "pvc://a/out"), EARLIER]),
], ids=["chosen now", "chosen before"])
def test_the_copy_reads_the_chosen_steps_output(
    status: Mapping[str, Any], sources: list[ReuseSource]
) -> None:
    result = step_pass(status=status, jobs=[PLAN_DONE], pods=[PLAN_POD],
                       succeeded={"sha256:f": sources})
    command = command_of(result)
    assert command[command.index("--from"):][:4] == [
        "--from", "pvc://old/out", "--from-step", "earlier"]


@pytest.mark.parametrize(("metadata", "started"), [
    ({}, "1800000000.000"),  # the step's creation, 8 h before NOW
    ({"creationTimestamp": None}, "1800028800.000"),  # unknown: now
], ids=["created", "creation time unknown"])
def test_the_merge_counts_the_duration_from_the_steps_creation(
    metadata: dict[str, Any], started: str
) -> None:
    result = step_pass(status=PLANNED, jobs=[PLAN_DONE, RUN_DONE], metadata=metadata)
    command = command_of(result)
    assert command[command.index("--started") + 1] == started


@pytest.mark.parametrize("status", [PLANNED, STOPPED], ids=["succeeded", "stopped"])
def test_the_merge_result_gives_the_final_totals(status: Mapping[str, Any]) -> None:
    report = {**RESULT_OK, "miniBatches": {"total": 10, "succeeded": 9, "failed": 1,
                                           "pending": 0},
              "output": {"file": None}}  # no output file; its place is the spec's
    result = step_pass(status=status, jobs=[PLAN_DONE, RUN_DONE, MERGE_DONE],
                       pods=[pod("merge", "Succeeded", report)])
    assert result.status["miniBatches"] == report["miniBatches"]
    assert result.status["items"] == RESULT_OK["items"]
    assert result.status["progress"] == "9/10"
    assert result.status["output"] == {"uri": "pvc://d/out", "file": None, "rows": 0}


def test_a_result_without_totals_leaves_the_running_counts() -> None:
    result = step_pass(status=PLANNED, jobs=[PLAN_DONE, RUN_DONE, MERGE_DONE],
                       pods=[pod("merge", "Succeeded", {"status": "Failed"})])
    assert result.status["miniBatches"] == PLANNED["miniBatches"]
    assert "output" not in result.status


def test_a_failed_step_is_not_complete_and_warns() -> None:
    failure = {**RESULT_OK, "status": "Failed", "reason": "AppendRowSchemaMismatch",
               "message": MISMATCH}
    running = {**PLANNED, "conditions": [*PLANNED["conditions"], condition(
        "Complete", False, "Pending"), condition("Failed", False, "Pending")]}
    result = step_pass(status=running, jobs=[PLAN_DONE, RUN_DONE, MERGE_DONE],
                       pods=[pod("merge", "Succeeded", failure)])
    assert find(result, "Complete") == ("False", "AppendRowSchemaMismatch", "the step failed")
    assert find(result, "Failed") == ("True", "AppendRowSchemaMismatch", MISMATCH)
    assert [(e.type, e.reason, e.message) for e in result.events] == [
        ("Warning", "AppendRowSchemaMismatch", MISMATCH)]
    written = [c for c in result.status["conditions"] if c["type"] in ("Complete", "Failed")]
    assert [(c["lastTransitionTime"], c["observedGeneration"]) for c in written] == [
        ("2027-01-15T08:10:00Z", 1), (NOW_TEXT, 1)]  # Complete stayed False: its time stays


@pytest.mark.parametrize(("metadata", "generation"), [
    ({"generation": 4}, 4), ({"generation": None}, 1),
], ids=["spec edited", "generation unknown"])
def test_the_status_and_its_conditions_record_the_generation_seen(
    metadata: dict[str, Any], generation: int
) -> None:
    result = step_pass(metadata=metadata)
    assert result.status["observedGeneration"] == generation
    assert [(c["type"], c["lastTransitionTime"], c["observedGeneration"])
            for c in result.status["conditions"]] == [
        ("Planned", NOW_TEXT, generation), ("Complete", NOW_TEXT, generation),
        ("Failed", NOW_TEXT, generation)]


def test_a_step_without_a_start_time_finishes_without_a_duration() -> None:
    result = step_pass(status={**PLANNED, "startTime": ""},
                       jobs=[PLAN_DONE, RUN_DONE, MERGE_DONE],
                       pods=[pod("merge", "Succeeded", RESULT_OK)])
    assert result.status["phase"] == "Succeeded"
    assert result.status["completionTime"] == NOW_TEXT
    assert "duration" not in result.status


def test_the_output_is_where_the_merge_says_it_wrote() -> None:
    result = step_pass(status=PLANNED, jobs=[PLAN_DONE, RUN_DONE, MERGE_DONE],
                       pods=[pod("merge", "Succeeded", RESULT_OK)],
                       spec={"output": {"uri": "pvc://d/out/"}})
    assert result.status["output"] == {"uri": "pvc://d/out", "file": "parallel_run_step.txt",
                                       "rows": 98}
