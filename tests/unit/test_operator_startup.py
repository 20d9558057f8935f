"""Pods that never start are visible in the status, and after startupTimeout the step fails
with PodsNotStarting, naming the pod and why."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest

from prs_operator.actions import DeleteJob
from prs_operator.observation import JobView, Observed, PodView, view_pod
from prs_operator.startup import Waiting, not_started, recheck_in, startup_failure, waiting_text
from prs_operator.status import compute_pass
from prs_runner.step.spec import apply_defaults
from tests.unit.test_operator_status import NOW, PLANNED, SETTINGS


def pending(name: str, age: float, why: str = "", started: bool = False,
            phase: str = "Pending", role: str = "run") -> PodView:
    return PodView(name, role, 0, phase, None, None, waiting=why, created=NOW - age,
                   started=started)


@pytest.mark.parametrize(("body", "waiting"), [
    ({"containerStatuses": [{"state": {"waiting": {
        "reason": "ImagePullBackOff", "message": "Back-off pulling image \"nope:1\""}}}]},
     'ImagePullBackOff: Back-off pulling image "nope:1"'),
    ({"containerStatuses": [{"state": {"waiting": {"reason": "CreateContainerConfigError"}}}]},
     "CreateContainerConfigError"),
    ({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                      "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."}]},
     "Unschedulable: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu."),
    ({"conditions": [{"type": "PodScheduled", "status": "True"}]}, ""),
    ({}, ""),
])
def test_why_a_pod_waits(body: dict[str, Any], waiting: str) -> None:
    pod = view_pod({"metadata": {"name": "p", "creationTimestamp": "2027-01-15T08:00:00Z"},
                    "status": {"phase": "Pending", **body}})
    assert pod.waiting == waiting
    created = datetime.datetime(2027, 1, 15, 8, tzinfo=datetime.UTC).timestamp()
    assert (pod.created, pod.started) == (created, False)


def test_only_pending_pods_that_never_started_count_oldest_first() -> None:
    pods = [pending("a", 10, "X"), pending("b", 50, "Y"), pending("c", 99, started=True),
            pending("d", 99, phase="Running", started=True)]
    assert not_started(pods, NOW) == [Waiting("b", "Y", 50.0), Waiting("a", "X", 10.0)]
    assert not_started([PodView("e", "run", 0, "Pending", None, None)], NOW) == [
        Waiting("e", "Pending", 0.0)]


def test_the_waiting_text_names_three_pods_and_counts_the_rest() -> None:
    waiting = [Waiting(f"p{i}", "ImagePullBackOff", 60.0 - i) for i in range(5)]
    assert waiting_text(waiting) == (
        "pod p0 not started after 60 s: ImagePullBackOff; pod p1 not started after 59 s: "
        "ImagePullBackOff; pod p2 not started after 58 s: ImagePullBackOff (and 2 more)")


def test_the_step_gives_up_only_past_the_timeout() -> None:
    assert startup_failure([Waiting("p", "X", 300.0)], 300) is None
    assert startup_failure([Waiting("p", "X", 301.0), Waiting("q", "Y", 5.0)], 300) == (
        "pod p not started after 301 s: X; no pod may take longer than startupTimeout=300 s "
        "to start: fix the cause (image, ConfigMap, node selector, resources) and create the "
        "step again")


def observe(pods: list[PodView], **spec: Any) -> Any:
    full = apply_defaults({"code": {"entryScript": "s.py", "configMap": "c"},
                           "input": {"type": "files", "uri": "pvc://d/in"},
                           "output": {"uri": "pvc://d/out"}, **spec})
    step = {"metadata": {"name": "s", "namespace": "ns", "uid": "u", "generation": 1,
                         "creationTimestamp": "2027-01-15T08:00:00Z"}, "spec": full,
            "status": {**PLANNED, "phase": "Running"}}
    jobs = {"plan": JobView("s-plan", "plan", complete=True),
            "run": JobView("s-run", "run", active=2)}
    return compute_pass(Observed(step, jobs, pods, {}, {}, NOW), SETTINGS)


def test_waiting_pods_show_in_the_message() -> None:
    result = observe([pending("s-run-0", 42, "ImagePullBackOff: no such image")])
    assert result.status["phase"] == "Running"
    assert result.status["message"] == ("0/10 mini-batches done; pod s-run-0 not started "
                                        "after 42 s: ImagePullBackOff: no such image")
    assert result.actions == []


def test_past_the_startup_timeout_the_step_fails_and_its_job_goes() -> None:
    result = observe([pending("s-run-0", 61, "Unschedulable: no GPU")], startupTimeout=60)
    assert result.status["phase"] == "Failed"
    failed = next(c for c in result.status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodsNotStarting"
    assert result.status["message"].startswith(
        "run: pod s-run-0 not started after 61 s: Unschedulable: no GPU; no pod may take "
        "longer than startupTimeout=60 s")
    assert "completionTime" in result.status
    assert result.actions == [DeleteJob("s-run")]


@pytest.mark.parametrize(("age", "noticed"), [(29.0, False), (30.0, True), (200.0, True)])
def test_a_pod_waiting_30_s_raises_pods_waiting_with_a_warning_event(
        age: float, noticed: bool) -> None:
    result = observe([pending("s-run-0", age, "ErrImagePull: no registry")])
    kinds = {c["type"]: c for c in result.status["conditions"]}
    if not noticed:
        assert "PodsWaiting" not in kinds and result.events == []
        return
    waiting = kinds["PodsWaiting"]
    assert (waiting["status"], waiting["reason"]) == ("True", "ErrImagePull")
    assert waiting["message"] == (f"pod s-run-0 not started after {age:.0f} s: "
                                  "ErrImagePull: no registry")
    assert [(e.type, e.reason) for e in result.events] == [("Warning", "ErrImagePull")]


def test_pods_waiting_clears_once_they_start() -> None:
    first = observe([pending("s-run-0", 40, "Unschedulable")])
    step_status = first.status
    full = apply_defaults({"code": {"entryScript": "s.py", "configMap": "c"},
                           "input": {"type": "files", "uri": "pvc://d/in"},
                           "output": {"uri": "pvc://d/out"}})
    step = {"metadata": {"name": "s", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": full, "status": step_status}
    jobs = {"plan": JobView("s-plan", "plan", complete=True),
            "run": JobView("s-run", "run", active=2)}
    started = [pending("s-run-0", 41, started=True, phase="Running")]
    later = compute_pass(Observed(step, jobs, started, {}, {}, NOW), SETTINGS)
    waiting = next(c for c in later.status["conditions"] if c["type"] == "PodsWaiting")
    assert (waiting["status"], waiting["reason"]) == ("False", "Started")
    assert later.events == []


def test_a_pass_is_due_just_after_the_oldest_waiting_pod_reaches_the_timeout() -> None:
    """An Unschedulable pod gets no further event: without a pass of its own the step would
    fail only at the next resync, up to 30 s past startupTimeout."""
    assert recheck_in([Waiting("a", "X", 42.0), Waiting("b", "Y", 10.0)], 60) == 19.0
    assert recheck_in([Waiting("a", "X", 75.0)], 60) == 1.0
    assert recheck_in([], 60) is None
    assert observe([pending("s-run-0", 42, "Unschedulable: no GPU")]).recheck_in == 259.0
    assert observe([pending("s-run-0", 42, started=True, phase="Running")]).recheck_in is None


def test_the_reconciler_runs_the_pass_that_is_due() -> None:
    from tests.unit.test_operator_missed_deletions import reconciler_with

    async def scenario() -> list[tuple[str, str]]:
        reconciler, _ = reconciler_with([], existing=set())
        passes: list[tuple[str, str]] = []

        async def reconcile(key: tuple[str, str]) -> None:
            passes.append(key)

        reconciler.reconcile = reconcile  # type: ignore[method-assign]
        reconciler.recheck(("ns", "s"), 0.05)
        reconciler.recheck(("ns", "s"), 30.0)  # later than the one already due: not kept
        assert list(reconciler.rechecks) == [("ns", "s")]
        await asyncio.sleep(0.3)
        assert reconciler.rechecks == {}
        return passes

    assert asyncio.run(scenario()) == [("ns", "s")]


@pytest.mark.parametrize(("age", "timeout", "due"), [
    (10.0, 300, 21.0),   # the 30 s notice comes first
    (40.0, 300, 261.0),  # past the notice: the timeout
    (10.0, 20, 11.0),    # a timeout shorter than the notice
])
def test_the_next_pass_is_due_at_the_next_mark_a_waiting_pod_reaches(
        age: float, timeout: int, due: float) -> None:
    result = observe([pending("s-run-0", age, "Unschedulable")], startupTimeout=timeout)
    assert result.recheck_in == due
