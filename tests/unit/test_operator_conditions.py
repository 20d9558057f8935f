"""metav1.Condition handling and the status's time formats (pure)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from prs_operator.conditions import (
    find,
    format_duration,
    is_true,
    parse_time,
    rfc3339,
    set_condition,
)


def condition(kind: str, status: str, when: str = "t0") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": "R", "message": "",
            "lastTransitionTime": when, "observedGeneration": 1}


def test_a_false_condition_is_written_as_metav1_wants_it() -> None:
    assert set_condition([], "Suspended", False, "Resumed", "", "t1", 2) == [{
        "type": "Suspended", "status": "False", "reason": "Resumed", "message": "",
        "lastTransitionTime": "t1", "observedGeneration": 2}]


def test_a_true_condition_is_written_with_its_generation() -> None:
    assert set_condition([], "Planned", True, "InputListed", "10 files", "t1", 3) == [{
        "type": "Planned", "status": "True", "reason": "InputListed", "message": "10 files",
        "lastTransitionTime": "t1", "observedGeneration": 3}]


@pytest.mark.parametrize(("old", "true", "moved"), [
    ("False", False, False), ("False", True, True), ("True", False, True), ("True", True, False),
], ids=["stays false", "becomes true", "becomes false", "stays true"])
def test_the_transition_time_moves_only_when_the_status_flips(
    old: str, true: bool, moved: bool
) -> None:
    [written] = set_condition([condition("Failed", old)], "Failed", true, "X", "m", "t1", 2)
    assert written["status"] == ("True" if true else "False")
    assert written["lastTransitionTime"] == ("t1" if moved else "t0")
    assert (written["reason"], written["message"], written["observedGeneration"]) == (
        "X", "m", 2)


def test_conditions_keep_one_order_whatever_order_they_were_set_in() -> None:
    conditions: list[dict[str, Any]] = [condition("Custom", "True")]
    for kind in ("Reused", "Failed", "Suspended", "Complete", "Planned"):
        conditions = set_condition(conditions, kind, False, "Pending", "", "t1", 1)
    assert [c["type"] for c in conditions] == [
        "Planned", "Complete", "Failed", "Suspended", "Reused", "Custom"]


def test_setting_a_condition_replaces_it_and_leaves_the_input_alone() -> None:
    old = [condition("Planned", "True"), condition("Complete", "False")]
    new = set_condition(old, "Complete", True, "Succeeded", "done", "t1", 1)
    assert [(c["type"], c["status"]) for c in new] == [("Planned", "True"), ("Complete", "True")]
    assert old[1]["status"] == "False"


def test_a_long_message_is_cut_to_the_api_limit() -> None:
    [written] = set_condition([], "Failed", True, "X", "e" * 32_001, "t1", 1)
    assert written["message"] == "e" * 32_000


@pytest.mark.parametrize(("kind", "true", "found"), [
    ("Planned", True, True), ("Complete", False, True), ("Failed", False, True),
    ("Reused", False, False),
], ids=["true", "false", "unknown status", "absent"])
def test_reading_conditions(kind: str, true: bool, found: bool) -> None:
    conditions = [condition("Planned", "True"), condition("Complete", "False"),
                  condition("Failed", "Unknown")]
    assert is_true(conditions, kind) is true
    assert (find(conditions, kind) is not None) is found


@pytest.mark.parametrize(("seconds", "text"), [
    (0.4, "0s"), (59, "59s"), (60, "1m0s"), (61.5, "1m2s"), (3600, "1h0m0s"), (7322, "2h2m2s"),
])
def test_durations_read_like_kubectl(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.fixture(params=["UTC0", "JST-9", "EST5EDT"])
def local_zone(request: pytest.FixtureRequest) -> Iterator[None]:
    """The machine's zone must not matter: the status is always in UTC."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.usefixtures("local_zone")
def test_times_are_rfc3339_in_utc_whole_seconds() -> None:
    assert rfc3339(1_800_028_800.9) == "2027-01-15T16:00:00Z"
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert parse_time("2027-01-15T16:00:00Z") == 1_800_028_800.0
    assert parse_time(rfc3339(1_700_000_000)) == 1_700_000_000.0


@pytest.mark.parametrize("text", [None, ""], ids=["absent", "empty"])
def test_no_time_is_no_time(text: str | None) -> None:
    assert parse_time(text) is None
