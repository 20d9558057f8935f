"""Counts of finished work and the three error thresholds (-1 / 100 disable a check, 0 means
"no failure tolerated"): exact messages, boundaries, and the arithmetic the shards and the
operator sum their counts with."""

from __future__ import annotations

from typing import Any

import pytest

from prs_runner.step.spec import DEFAULTS
from prs_runner.step.thresholds import Counts, crossed_threshold, shards_crossed


def spec(**changes: Any) -> dict[str, Any]:
    return {**DEFAULTS, **changes}


def failed(mini_batches: int = 0, items: int = 0) -> Counts:
    return Counts(mini_batches_failed=mini_batches, items_failed=items)


# Counts


def test_counts_start_at_zero() -> None:
    assert Counts() == Counts(0, 0, 0, 0, 0)
    assert Counts().mini_batches_done == 0
    assert Counts().to_dict() == {"miniBatchesSucceeded": 0, "miniBatchesFailed": 0,
                                  "itemsSucceeded": 0, "itemsFailed": 0, "rows": 0}


def test_adding_counts_adds_every_field_separately() -> None:
    total = Counts(1, 2, 30, 4, 500) + Counts(10, 20, 300, 40, 5000)
    assert total == Counts(
        mini_batches_succeeded=11, mini_batches_failed=22, items_succeeded=330,
        items_failed=44, rows=5500,
    )


def test_summing_shard_counts_totals_items_and_mini_batches() -> None:
    shards = [Counts(3, 1, 29, 3, 0), Counts(0, 0, 0, 0, 0), Counts(2, 2, 18, 12, 7)]
    total = sum(shards, Counts())
    assert total == Counts(5, 3, 47, 15, 7)
    assert total.items_succeeded + total.items_failed == 62
    assert total.mini_batches_done == 8


def test_adding_leaves_both_operands_alone() -> None:
    left, right = Counts(1, 1, 1, 1, 1), Counts(2, 2, 2, 2, 2)
    assert left + right == Counts(3, 3, 3, 3, 3)
    assert left == Counts(1, 1, 1, 1, 1)
    assert right == Counts(2, 2, 2, 2, 2)


@pytest.mark.parametrize(
    ("counts", "done"),
    [(Counts(), 0), (Counts(4, 0), 4), (Counts(0, 3), 3), (Counts(4, 3, 99, 99, 99), 7)],
    ids=["none", "only-succeeded", "only-failed", "both-items-ignored"],
)
def test_mini_batches_done_counts_succeeded_and_failed(counts: Counts, done: int) -> None:
    assert counts.mini_batches_done == done


def test_counts_to_dict_uses_the_status_field_names() -> None:
    assert Counts(1, 2, 3, 4, 5).to_dict() == {
        "miniBatchesSucceeded": 1, "miniBatchesFailed": 2, "itemsSucceeded": 3,
        "itemsFailed": 4, "rows": 5,
    }


def test_counts_round_trip_through_a_dict() -> None:
    counts = Counts(7, 2, 130, 11, 4242)
    assert Counts.from_dict(counts.to_dict()) == counts


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, Counts()),
        ({"miniBatchesSucceeded": 5}, Counts(mini_batches_succeeded=5)),
        ({"miniBatchesFailed": 5}, Counts(mini_batches_failed=5)),
        ({"itemsSucceeded": 5}, Counts(items_succeeded=5)),
        ({"itemsFailed": 5}, Counts(items_failed=5)),
        ({"rows": 5}, Counts(rows=5)),
        ({"rows": 5, "total": 99}, Counts(rows=5)),
    ],
    ids=["empty", "mb-succeeded", "mb-failed", "items-succeeded", "items-failed", "rows",
         "unknown-key-ignored"],
)
def test_counts_from_a_partial_dict_default_to_zero(data: dict[str, Any], expected: Counts
                                                    ) -> None:
    assert Counts.from_dict(data) == expected


# Thresholds: which one is crossed, and when


@pytest.mark.parametrize(
    ("counts", "changes", "total", "crossed"),
    [
        # errorThreshold counts failed items; 0 tolerates none, -1 ignores all.
        (failed(items=0), {"errorThreshold": 0}, 10, None),
        (failed(1, items=1), {"errorThreshold": 0}, 10, "errorThreshold"),
        (failed(1, items=5), {"errorThreshold": 5}, 10, None),
        (failed(1, items=6), {"errorThreshold": 5}, 10, "errorThreshold"),
        (failed(10, items=10**6), {"errorThreshold": -1}, 10, None),
        # miniBatchErrorThreshold counts failed mini-batches, not items.
        (failed(0, items=50), {"miniBatchErrorThreshold": 0}, 10, None),
        (failed(1, items=1), {"miniBatchErrorThreshold": 0}, 10, "miniBatchErrorThreshold"),
        (failed(2, items=9), {"miniBatchErrorThreshold": 2}, 10, None),
        (failed(3, items=9), {"miniBatchErrorThreshold": 2}, 10, "miniBatchErrorThreshold"),
        (failed(10, items=10), {"miniBatchErrorThreshold": -1}, 10, None),
        # allowedFailedPercent: failed mini-batches over all of them; exactly at it is allowed.
        (failed(1), {"allowedFailedPercent": 10}, 10, None),
        (failed(2), {"allowedFailedPercent": 10}, 10, "allowedFailedPercent"),
        (failed(1), {"allowedFailedPercent": 12.5}, 8, None),
        (failed(2), {"allowedFailedPercent": 12.5}, 8, "allowedFailedPercent"),
        (failed(1), {"allowedFailedPercent": 0.5}, 200, None),
        (failed(2), {"allowedFailedPercent": 0.5}, 200, "allowedFailedPercent"),
        (failed(0), {"allowedFailedPercent": 0}, 10, None),
        (failed(1), {"allowedFailedPercent": 0}, 10, "allowedFailedPercent"),
        (failed(9), {"allowedFailedPercent": 99}, 10, None),
        (failed(10), {"allowedFailedPercent": 99}, 10, "allowedFailedPercent"),
        (failed(10, items=10), {"allowedFailedPercent": 100}, 10, None),
        # 100 switches the check off whatever the counts say, even inconsistent ones with
        # more failed mini-batches than planned (the check is skipped, not just never true).
        (failed(12, items=12), {"allowedFailedPercent": 100}, 10, None),
        # One mini-batch in all: it failing is 100 %.
        (failed(1, items=1), {"allowedFailedPercent": 99.9}, 1, "allowedFailedPercent"),
        (failed(1, items=1), {"allowedFailedPercent": 100}, 1, None),
        (failed(0), {"allowedFailedPercent": 0}, 1, None),
        # No mini-batches (empty input): nothing to divide by, nothing crossed.
        (failed(0), {"allowedFailedPercent": 0}, 0, None),
        (failed(0), {"errorThreshold": 0, "miniBatchErrorThreshold": 0}, 0, None),
        # Everything disabled (the defaults): even all failed is no reason to stop.
        (failed(10, items=500), {}, 10, None),
    ],
    ids=[
        "items-0-none-failed", "items-0-one-failed", "items-at-threshold",
        "items-over-threshold", "items-disabled",
        "batches-0-items-failed-in-none", "batches-0-one-failed", "batches-at-threshold",
        "batches-over-threshold", "batches-disabled",
        "percent-exactly-at", "percent-over", "percent-fraction-exactly-at",
        "percent-fraction-over", "percent-below-1-at", "percent-below-1-over",
        "percent-0-none-failed", "percent-0-one-failed", "percent-99-at-90",
        "percent-99-all-failed", "percent-100-disabled",
        "percent-100-disabled-over-total",
        "one-batch-failed", "one-batch-percent-100", "one-batch-ok",
        "no-batches-percent-0", "no-batches-thresholds-0", "all-disabled",
    ],
)
def test_which_threshold_is_crossed(
    counts: Counts, changes: dict[str, Any], total: int, crossed: str | None
) -> None:
    why = crossed_threshold(counts, spec(**changes), total)
    assert (why.split(" ")[0] if why else None) == crossed


def test_error_threshold_zero_is_not_disabled() -> None:
    assert crossed_threshold(failed(1, items=1), spec(errorThreshold=0), 10) == (
        "errorThreshold exceeded: 1 failed items > errorThreshold 0"
    )


@pytest.mark.parametrize(
    ("counts", "changes", "total", "message"),
    [
        (failed(1, items=4), {"errorThreshold": 3}, 10,
         "errorThreshold exceeded: 4 failed items > errorThreshold 3"),
        (failed(3, items=3), {"miniBatchErrorThreshold": 2}, 10,
         "miniBatchErrorThreshold exceeded: 3 failed mini-batches > miniBatchErrorThreshold 2"),
        (failed(2), {"allowedFailedPercent": 10}, 10,
         "allowedFailedPercent exceeded: 2 of 10 mini-batches failed (20.0% > 10%)"),
        (failed(1), {"allowedFailedPercent": 12.5}, 3,
         "allowedFailedPercent exceeded: 1 of 3 mini-batches failed (33.3% > 12.5%)"),
    ],
    ids=["items", "mini-batches", "percent", "percent-rounded"],
)
def test_threshold_messages(
    counts: Counts, changes: dict[str, Any], total: int, message: str
) -> None:
    assert crossed_threshold(counts, spec(**changes), total) == message


def test_items_are_checked_before_mini_batches_and_percent() -> None:
    everything = spec(errorThreshold=0, miniBatchErrorThreshold=0, allowedFailedPercent=0)
    why = crossed_threshold(failed(5, items=7), everything, 10)
    assert why == "errorThreshold exceeded: 7 failed items > errorThreshold 0"


def test_mini_batches_are_checked_before_percent() -> None:
    both = spec(miniBatchErrorThreshold=1, allowedFailedPercent=0)
    why = crossed_threshold(failed(5, items=7), both, 10)
    assert why == (
        "miniBatchErrorThreshold exceeded: 5 failed mini-batches > miniBatchErrorThreshold 1"
    )


def test_succeeded_work_does_not_count_against_thresholds() -> None:
    strict = spec(errorThreshold=0, miniBatchErrorThreshold=0, allowedFailedPercent=0)
    assert crossed_threshold(Counts(10, 0, 1000, 0, 1000), strict, 10) is None


def test_counts_subtract_field_by_field() -> None:
    """What a shard uncounts when another shard turns out to own a mini-batch it ran."""
    total = Counts(5, 4, 30, 20, 10) - Counts(1, 2, 3, 4, 5)
    assert total == Counts(4, 2, 27, 16, 5)
    assert total + Counts(1, 2, 3, 4, 5) == Counts(5, 4, 30, 20, 10)


@pytest.mark.parametrize(("each", "why", "alone"), [
    ([Counts(0, 0, 0, 1, 0), Counts(0, 0, 0, 1, 0)], None, False),
    ([Counts(0, 0, 0, 2, 0), Counts(0, 0, 0, 1, 0)],
     "errorThreshold exceeded: 3 failed items > errorThreshold 2", False),  # the sum only
    ([Counts(0, 0, 0, 3, 0), Counts(0, 0, 0, 0, 0)],
     "errorThreshold exceeded: 3 failed items > errorThreshold 2", True),  # one shard's own
    ([Counts(0, 0, 0, 3, 0)], "errorThreshold exceeded: 3 failed items > errorThreshold 2", True),
    ([], None, False),
])
def test_whether_one_shard_or_only_the_sum_crosses(each: list[Counts], why: str | None,
                                                   alone: bool) -> None:
    spec = {"errorThreshold": 2, "miniBatchErrorThreshold": -1, "allowedFailedPercent": 100}
    assert shards_crossed(each, spec, 10) == (why, alone)


def test_whether_one_shard_or_only_the_sum_crosses_a_share_of_the_plan() -> None:
    spec = {"errorThreshold": -1, "miniBatchErrorThreshold": -1, "allowedFailedPercent": 10}
    message = "allowedFailedPercent exceeded: 2 of 10 mini-batches failed (20.0% > 10%)"
    assert shards_crossed([Counts(0, 1), Counts(0, 1)], spec, 10) == (message, False)
    assert shards_crossed([Counts(0, 2), Counts()], spec, 10) == (message, True)
