"""status.eta, the ETA column of `kubectl get prs`: the rest of the run at its rate so far.
The function table-driven, then what a reconcile pass writes."""

from __future__ import annotations

from typing import Any

import pytest

from prs_operator.eta import eta_text
from tests.unit.test_operator_status import NOW, PLANNED, RESULT_OK, Case, counts, job, observe, pod

START = 1_000_000.0


@pytest.mark.parametrize(("done", "total", "since", "now", "text"), [
    pytest.param(0, 10, START, START + 60, "", id="no progress yet: no rate, unknown"),
    pytest.param(10, 10, START, START + 60, "", id="finished: empty"),
    pytest.param(12, 10, START, START + 60, "", id="more than planned (retried): empty"),
    pytest.param(3, 10, None, START + 60, "", id="start unknown"),
    pytest.param(3, 10, START, START, "", id="no time has passed"),
    pytest.param(5, 10, START, START + 250, "4m10s", id="half done in 4m10s: as long again"),
    pytest.param(1, 4, START, START + 20, "1m0s", id="steady rate: 20 s each, 3 left"),
    pytest.param(9, 10, START, START + 90, "10s", id="the last one"),
    pytest.param(1, 100, START, START + 3600, "99h0m0s", id="hours"),
])
def test_eta_text(done: int, total: int, since: float | None, now: float, text: str) -> None:
    assert eta_text(done, total, since, now) == text


def running(status: dict[str, Any], live: dict[int, Any]) -> dict[str, Any]:
    return observe(Case("x", spec={"nodeCount": 2}, status=status,
                        jobs=[job("plan", complete=True), job("run", active=2)],
                        live=live)).status


def test_a_pass_estimates_from_the_time_since_planning() -> None:
    # PLANNED's Planned condition turned True 8 h before NOW; 4 of 10 done since.
    status = running(PLANNED, {0: counts(3), 1: counts(1)})
    assert NOW - 8 * 3600 == 1_800_000_000.0
    assert status["eta"] == "12h0m0s"


def test_nothing_done_yet_is_unknown() -> None:
    assert running(PLANNED, {})["eta"] == ""


def test_a_pass_that_only_moved_the_clock_keeps_the_estimate() -> None:
    """Recomputed only when the counts move: otherwise every pass would change the status and
    write it."""
    before = running(PLANNED, {0: counts(3), 1: counts(1)})
    again = running({**before, "eta": "kept"}, {0: counts(3), 1: counts(1)})
    assert again["eta"] == "kept"
    moved = running({**before, "eta": "kept"}, {0: counts(4), 1: counts(1)})
    assert moved["eta"] == "8h0m0s"  # 5 of 10 in 8 h


def test_a_finished_step_has_no_eta() -> None:
    status = observe(Case("x", status={**PLANNED, "eta": "3m0s",
                                       "runCompletionTime": "2027-01-15T15:00:00Z"},
                          jobs=[job("plan", complete=True), job("run", complete=True),
                                job("merge", complete=True)],
                          pods=[pod("merge", "Succeeded", RESULT_OK)])).status
    assert status["phase"] == "Succeeded" and status["eta"] == ""
