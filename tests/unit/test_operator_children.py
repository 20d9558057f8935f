"""A step counts only its own children, matched by controller UID as metav1.IsControlledBy
does; a Job left by a deleted step of the same name is deleted (by UID), never adopted."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from prs_operator.actions import DeleteJob
from prs_operator.observation import (
    JobView,
    Observed,
    PodView,
    controller_uid,
    own_children,
    view_job,
    view_pod,
)
from prs_operator.status import compute_pass
from prs_runner.step.spec import apply_defaults
from tests.unit.test_operator_status import NOW, PLANNED, SETTINGS


def owner(uid: str, controller: bool = True) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "X", "name": "n", "uid": uid, "controller": controller}


@pytest.mark.parametrize(("references", "uid"), [
    ([owner("a")], "a"),
    ([owner("a", controller=False), owner("b")], "b"),
    ([owner("a", controller=False)], ""),
    ([], ""),
    (None, ""),
])
def test_controller_uid(references: Any, uid: str) -> None:
    assert controller_uid({"ownerReferences": references}) == uid


def test_views_carry_their_uid_and_controller() -> None:
    job = view_job({"metadata": {"name": "s-run", "uid": "j1",
                                 "ownerReferences": [owner("step-1")]}})
    assert (job.uid, job.owner_uid) == ("j1", "step-1")
    pod = view_pod({"metadata": {"name": "s-run-0", "ownerReferences": [owner("j1")]}})
    assert pod.owner_uid == "j1"


def job(role: str, uid: str, owner_uid: str, **state: Any) -> JobView:
    return JobView(name=f"s-{role}", role=role, uid=uid, owner_uid=owner_uid, **state)


def pod(name: str, owner_uid: str) -> PodView:
    return PodView(name, "run", 0, "Running", None, None, owner_uid=owner_uid)


def test_only_the_steps_own_jobs_and_their_pods_count() -> None:
    mine, old = job("run", "j-new", "step-new"), job("plan", "j-old", "step-old")
    children = own_children("step-new", [mine, old],
                            [pod("p-new", "j-new"), pod("p-old", "j-old"), pod("p-x", "")])
    assert children.jobs == {"run": mine}
    assert [p.name for p in children.pods] == ["p-new"]
    assert children.stale == [old]


def observe(stale: list[JobView], jobs: list[JobView] | None = None) -> Any:
    spec = apply_defaults({"code": {"entryScript": "s.py", "configMap": "c"},
                           "input": {"type": "files", "uri": "pvc://d/in"},
                           "output": {"uri": "pvc://d/out"}})
    step = {"metadata": {"name": "s", "namespace": "ns", "uid": "step-new", "generation": 1,
                         "creationTimestamp": "2027-01-15T08:00:00Z"}, "spec": spec,
            "status": {}}
    observed = Observed(step, {j.role: j for j in jobs or []}, [], {}, {}, NOW, stale=stale)
    return compute_pass(observed, SETTINGS)


def test_a_recreated_step_deletes_its_predecessors_jobs_by_uid_and_waits() -> None:
    done = observe([job("plan", "j-old", "step-old", complete=True),
                    job("merge", "j-old-merge", "step-old", complete=True)])
    assert done.actions == [DeleteJob("s-plan", "j-old"), DeleteJob("s-merge", "j-old-merge")]
    assert done.status["phase"] == "Planning"
    assert done.status["message"] == ("waiting for Job s-merge, s-plan of a deleted step of "
                                      "the same name to go")
    assert not any(c["status"] == "True" for c in done.status["conditions"])
    assert "completionTime" not in done.status


def test_once_they_are_gone_it_plans_for_itself() -> None:
    result = observe([])
    assert [a.manifest["metadata"]["name"] for a in result.actions] == ["s-plan"]


def test_a_job_of_another_name_is_ignored_not_deleted() -> None:
    other = JobView("s-plan-copy", "plan", uid="x", owner_uid="step-old")
    result = observe([other])
    assert [a.manifest["metadata"]["name"] for a in result.actions] == ["s-plan"]


def test_a_job_that_belongs_to_no_step_is_not_deleted() -> None:
    result = observe([job("run", "j-user", "")])
    assert result.actions == []
    assert result.status["message"] == ("Job s-run has this step's name but belongs to no "
                                         "step; delete it")


def memory_limited_step(status: dict[str, Any]) -> dict[str, Any]:
    """A step whose pods have a 64Mi memory limit, with STATUS."""
    spec = apply_defaults({"code": {"entryScript": "s.py", "configMap": "c"},
                           "input": {"type": "files", "uri": "pvc://d/in"},
                           "output": {"uri": "pvc://d/out"},
                           "resources": {"limits": {"memory": "64Mi"}}})
    return {"metadata": {"name": "s", "namespace": "ns", "uid": "step-new", "generation": 1,
                         "creationTimestamp": "2027-01-15T08:00:00Z"}, "spec": spec,
            "status": status}


def test_an_oom_killed_shard_names_the_memory_limit() -> None:
    from prs_operator.observation import PodView as View

    step = memory_limited_step({**PLANNED, "phase": "Running"})
    killed = View("s-run-0", "run", 0, "Failed", 137, None, "", reason="OOMKilled")
    jobs = {"plan": JobView("s-plan", "plan", complete=True),
            "run": JobView("s-run", "run", failed_reason="BackoffLimitExceeded")}
    result = compute_pass(Observed(step, jobs, [killed], {}, {}, NOW), SETTINGS)
    assert result.status["message"] == (
        "OOMKilled: run pod s-run-0 used more memory than its limit "
        "(resources.limits.memory=64Mi); raise the limit or use less memory per process")


def rejected_pass(rejection: Any, jobs: list[JobView] | None = None) -> Any:
    spec = apply_defaults({"code": {"entryScript": "s.py", "configMap": "c"},
                           "input": {"type": "files", "uri": "pvc://d/in"},
                           "output": {"uri": "pvc://d/out"}})
    step = {"metadata": {"name": "s", "namespace": "ns", "uid": "step-new", "generation": 1,
                         "creationTimestamp": "2027-01-15T08:00:00Z"}, "spec": spec,
            "status": {**PLANNED, "phase": "Running"}}
    observed = Observed(step, {j.role: j for j in jobs or [JobView("s-plan", "plan",
                                                                   complete=True)]},
                        [], {}, {}, NOW, rejection=rejection)
    return compute_pass(observed, SETTINGS)


def test_an_invalid_job_ends_the_step_with_the_api_servers_words() -> None:
    from prs_operator.actions import Rejection

    result = rejected_pass(Rejection("s-run", 422, "Invalid",
                                     'Job.batch "s-run" is invalid: spec.template...: '
                                     'Invalid value: "bogus": must be a quantity'))
    failed = next(c for c in result.status["conditions"] if c["type"] == "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "JobRejected")
    assert result.status["message"] == (
        'the API server refused Job s-run (422 Invalid): Job.batch "s-run" is invalid: '
        'spec.template...: Invalid value: "bogus": must be a quantity')
    assert "completionTime" in result.status and result.actions == []


def test_a_refusal_that_may_heal_is_shown_and_retried() -> None:
    from prs_operator.actions import CreateJob, Rejection

    result = rejected_pass(Rejection("s-run", 403, "Forbidden",
                                     "exceeded quota: compute, requested: pods=2", attempts=3))
    created = next(c for c in result.status["conditions"] if c["type"] == "CreateFailed")
    assert (created["status"], created["reason"]) == ("True", "Forbidden")
    assert created["message"] == ("the API server refused Job s-run (403 Forbidden): exceeded "
                                  "quota: compute, requested: pods=2; retrying (attempt 3)")
    assert [a.manifest["metadata"]["name"] for a in result.actions
            if isinstance(a, CreateJob)] == ["s-run"]
    assert "completionTime" not in result.status


def test_once_created_the_refusal_is_cleared() -> None:
    from prs_operator.actions import Rejection

    before = rejected_pass(Rejection("s-run", 403, "Forbidden", "quota"))
    step_status = before.status
    jobs = [JobView("s-plan", "plan", complete=True), JobView("s-run", "run", active=1)]
    spec = apply_defaults({"code": {"entryScript": "s.py", "configMap": "c"},
                           "input": {"type": "files", "uri": "pvc://d/in"},
                           "output": {"uri": "pvc://d/out"}})
    step = {"metadata": {"name": "s", "namespace": "ns", "uid": "step-new", "generation": 1,
                         "creationTimestamp": "2027-01-15T08:00:00Z"}, "spec": spec,
            "status": step_status}
    after = compute_pass(Observed(step, {j.role: j for j in jobs}, [], {}, {}, NOW,
                                  rejection=Rejection("s-run", 403, "Forbidden", "quota")),
                         SETTINGS)
    created = next(c for c in after.status["conditions"] if c["type"] == "CreateFailed")
    assert (created["status"], created["reason"]) == ("False", "Created")


def run_stage(status: dict[str, Any], jobs: list[JobView]) -> Any:
    spec = apply_defaults({"code": {"entryScript": "s.py", "configMap": "c"},
                           "input": {"type": "files", "uri": "pvc://d/in"},
                           "output": {"uri": "pvc://d/out"}, "ttlSecondsAfterFinished": 0})
    step = {"metadata": {"name": "s", "namespace": "ns", "uid": "step-new", "generation": 1,
                         "creationTimestamp": "2027-01-15T08:00:00Z"}, "spec": spec,
            "status": status}
    return compute_pass(Observed(step, {j.role: j for j in jobs}, [], {}, {}, NOW), SETTINGS)


def test_a_completed_run_is_recorded_before_the_merge_starts() -> None:
    done = run_stage({**PLANNED, "phase": "Running"},
                     [JobView("s-plan", "plan", complete=True),
                      JobView("s-run", "run", complete=True)])
    assert "runCompletionTime" in done.status
    assert [a.manifest["metadata"]["name"] for a in done.actions] == ["s-merge"]


def test_a_run_job_deleted_after_it_completed_is_not_run_again() -> None:
    # ttlSecondsAfterFinished: 0 lets the Job controller delete the run Job at once.
    later = run_stage({**PLANNED, "phase": "Merging", "runCompletionTime": "2027-01-15T08:01:00Z"},
                      [JobView("s-plan", "plan", complete=True)])
    assert [a.manifest["metadata"]["name"] for a in later.actions] == ["s-merge"]


@pytest.mark.parametrize("exit_code", [0, 3])
def test_a_worker_killed_for_memory_leads_the_failure_with_the_memory_limit(
        exit_code: int) -> None:
    """The OOM killer ended a worker, not the shard: the shard went on (exit 0, or 3 once a
    threshold was crossed) and only its container's reason says OOMKilled. The merge's
    words follow the memory limit."""
    from prs_operator.observation import PodView as View

    step = memory_limited_step(
        {**PLANNED, "phase": "Merging", "runCompletionTime": "2027-01-15T08:01:00Z"})
    phase = "Succeeded" if exit_code == 0 else "Failed"
    shard = View("s-run-0", "run", 0, phase, exit_code, {"counts": {}}, reason="OOMKilled")
    merged = View("s-merge-1", "merge", None, "Succeeded", 0, {
        "status": "Failed", "reason": "AllMiniBatchesFailed",
        "message": "all 2 mini-batches failed; first error: OOMKilled: worker process ..."})
    jobs = {"plan": JobView("s-plan", "plan", complete=True),
            "run": JobView("s-run", "run", complete=True),
            "merge": JobView("s-merge", "merge", complete=True)}
    result = compute_pass(Observed(step, jobs, [shard, merged], {}, {}, NOW), SETTINGS)
    failed = next(c for c in result.status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "AllMiniBatchesFailed"
    assert result.status["message"] == failed["message"] == (
        "OOMKilled: run pod s-run-0 used more memory than its limit "
        "(resources.limits.memory=64Mi); raise the limit or use less memory per process; "
        "all 2 mini-batches failed; first error: OOMKilled: worker process ...")
    calm = compute_pass(Observed(step, jobs, [replace(shard, reason="Completed"), merged], {},
                                 {}, NOW), SETTINGS)
    assert calm.status["message"].startswith("all 2 mini-batches failed")
