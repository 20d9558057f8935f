"""A Job deleted while the operator's watch was down stays in kopf's index (kopf does not
turn a deletion missed during a watch restart into an event). The resync lists the step's
Jobs and reconciles without the ones the API server no longer has.

The API server's list is stood in for here: a missed watch event cannot be produced on
demand against the real control plane, and only this one call's answer matters."""

from __future__ import annotations

import asyncio
from typing import Any

from prs_operator.builders import RunnerSettings
from prs_operator.metrics import Metrics
from prs_operator.observation import JobView
from prs_operator.progress import ProgressBook
from prs_operator.reconciler import Indexes, Reconciler


class ListedJobs:
    """Answers job_uids like the API server would after the deletion."""

    def __init__(self, existing: set[str]) -> None:
        self.existing = existing
        self.calls: list[tuple[str, str]] = []

    def job_uids(self, namespace: str, step: str) -> set[str]:
        self.calls.append((namespace, step))
        return self.existing


def reconciler_with(jobs: list[JobView], existing: set[str]) -> tuple[Reconciler, ListedJobs]:
    listed = ListedJobs(existing)
    reconciler = Reconciler(listed, RunnerSettings("i", "u", b"k"),  # type: ignore[arg-type]
                            ProgressBook(), Metrics())
    reconciler.indexes = Indexes(jobs={("ns", "s"): jobs})
    return reconciler, listed


def test_a_job_the_api_server_no_longer_has_is_left_out() -> None:
    run = JobView("s-run", "run", uid="run-1", owner_uid="step-1")
    plan = JobView("s-plan", "plan", uid="plan-1", owner_uid="step-1")
    reconciler, listed = reconciler_with([plan, run], existing={"plan-1"})
    asyncio.run(reconciler.forget_deleted_jobs(("ns", "s")))
    assert listed.calls == [("ns", "s")]
    assert reconciler.gone == {"run-1"}


def test_nothing_is_listed_for_a_step_without_jobs_or_with_all_present() -> None:
    reconciler, listed = reconciler_with([], existing=set())
    asyncio.run(reconciler.forget_deleted_jobs(("ns", "s")))
    assert listed.calls == [] and reconciler.gone == set()
    job: Any = JobView("s-plan", "plan", uid="plan-1")
    reconciler, listed = reconciler_with([job], existing={"plan-1"})
    asyncio.run(reconciler.forget_deleted_jobs(("ns", "s")))
    assert reconciler.gone == set()
