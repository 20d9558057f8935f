"""Work stealing, the pure part: owners after the marks, and what an idle shard takes."""

from __future__ import annotations

import pytest

from prs_runner.execution.loot import (
    LEAST,
    Mark,
    loot_of,
    owned_by,
    owners_after,
    pick_victim,
    probably_done_by,
    remaining_counts,
)

PLANNED = {0: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 1}


@pytest.mark.parametrize(("marks", "moved"), [
    ([], {}),
    ([Mark("a", 0, 1, (1, 2))], {1: 1, 2: 1}),
    # A mark moves only what its victim owns at that point.
    ([Mark("a", 1, 0, (1, 2))], {}),
    # Two thieves took the same mini-batch: the first mark by name wins, whatever the order
    # they are read in.
    ([Mark("b", 0, 2, (2,)), Mark("a", 0, 1, (2,))], {2: 1}),
    ([Mark("a", 0, 1, (2,)), Mark("b", 0, 2, (2,))], {2: 1}),
    # Taken again from the thief.
    ([Mark("a", 0, 1, (2,)), Mark("b", 1, 2, (2, 5))], {2: 2, 5: 2}),
    # Written before the thief owned it: not moved by that mark.
    ([Mark("a", 1, 2, (2, 5)), Mark("b", 0, 1, (2,))], {5: 2, 2: 1}),
    # Moved back to the shard the plan gave it: still a move, ordered as the last one.
    ([Mark("a", 0, 1, (1, 2)), Mark("b", 1, 0, (1,))], {2: 1, 1: 0}),
    # An id the plan does not have is ignored.
    ([Mark("a", 0, 1, (99,))], {}),
])
def test_owners_after_the_marks(marks: list[Mark], moved: dict[int, int]) -> None:
    after = owners_after(PLANNED.get, marks)
    assert list(after.items()) == list(moved.items())  # in the order of the last moves


def planned_ids(shard: int) -> list[int]:
    return [mb_id for mb_id, owner in PLANNED.items() if owner == shard]


def test_owned_by_a_shard_in_the_order_it_runs_them() -> None:
    moved = {2: 1, 4: 0, 5: 2}
    assert owned_by(0, planned_ids(0), moved) == [0, 1, 4]
    assert owned_by(1, planned_ids(1), moved) == [3, 2]  # its own share first, then loot
    assert owned_by(2, planned_ids(2), moved) == [5]
    assert owned_by(3, planned_ids(3), moved) == []
    assert owned_by(0, planned_ids(0), {}) == [0, 1, 2]
    # Loot in the order it was moved (mark by mark), not in id order.
    assert owned_by(1, planned_ids(1), {5: 0, 3: 0, 0: 1, 4: 0, 1: 1}) == [0, 1]
    assert owned_by(0, [1, 0], {4: 0, 3: 0, 2: 1}) == [0, 1, 4, 3]


def test_a_thief_takes_what_its_victim_reaches_last() -> None:
    """Shard 1 took 3..5 and then 0..2 from shard 0; a thief (shard 2) sees all six as not
    committed yet (the first ones ran a moment ago): it takes the last ones shard 1 runs."""
    planned = {mb_id: 0 for mb_id in range(6)}
    moved = owners_after(planned.get, [Mark("a", 0, 1, (3, 4, 5)), Mark("b", 0, 1, (0, 1, 2))])
    remaining = owned_by(1, [], moved)
    assert remaining == [3, 4, 5, 0, 1, 2]
    assert loot_of(remaining, 2) == [1, 2]


@pytest.mark.parametrize(("left", "keep", "victim"), [
    ([0, 4], 0, 1),
    ([0, 2], 0, 1),
    ([0, 1], 0, -1),  # fewer than LEAST
    ([0, 6], 4, 1),  # LEAST beyond the first KEEP
    ([0, 5], 4, -1),
    ([0, 3, 4], 0, 2),  # the most left
    ([0, 2, 2], 0, 1),  # a tie: the lower shard
    ([0, 3, 3, 2], 0, 1),
    ([4], 0, -1),  # never from itself
    ([9, 0, 0], 0, -1),
    ([], 0, -1),
])
def test_pick_victim(left: list[int], keep: int, victim: int) -> None:
    assert pick_victim(left, 0, keep) == victim


def test_pick_victim_never_the_thief_itself() -> None:
    assert pick_victim([2, 9, 3], 1, 0) == 2


@pytest.mark.parametrize(("ids", "keep", "loot"), [
    ([5, 6, 7, 8], 0, [7, 8]),
    ([8, 5, 7, 6], 0, [7, 6]),  # the owner's order, not id order
    ([5, 6, 7, 8, 9], 0, [8, 9]),  # the smaller half: the owner keeps more
    ([5, 6], 0, [6]),
    ([5], 0, []),
    ([5, 6, 7, 8, 9, 10], 4, [10]),  # the first KEEP stay with the owner
    ([5, 6, 7, 8, 9, 10, 11], 4, [11]),
    ([5, 6, 7, 8, 9, 10, 11, 12], 4, [11, 12]),
    ([5, 6, 7], 4, []),
    ([], 0, []),
])
def test_loot_of(ids: list[int], keep: int, loot: list[int]) -> None:
    assert loot_of(ids, keep) == loot


@pytest.mark.parametrize(("planned", "moved", "left"), [
    ([3, 2], [], [3, 2]),
    ([3, 2], [(0, 1)], [2, 3]),  # one of shard 0's moved to shard 1
    ([3, 2, 0], [(0, 2), (0, 2), (1, 0)], [2, 1, 2]),
    ([1, 1], [(0, 0)], [1, 1]),  # moved back to where the plan put it
])
def test_remaining_counts(planned: list[int], moved: list[tuple[int, int]],
                          left: list[int]) -> None:
    assert remaining_counts(len(planned), planned.__getitem__, moved) == left


def test_least_is_two() -> None:
    assert LEAST == 2


@pytest.mark.parametrize(("processes", "ends", "first_start", "seconds", "done"), [
    (2, [99.0, 99.0], 0.0, 0.1, 20),  # 1 s since each worker's newest end
    (2, [99.0, 99.0], 0.0, 0.3, 6),  # whole ones only
    (2, [99.5, 99.75], 0.0, 0.25, 3),  # of the sum: 0.5 + 0.25 s
    (1, [99.95], 0.0, 0.1, 0),
    (4, [99.5] * 4, 0.0, 0.5, 4),
    (2, [100.0, 100.0], 0.0, 0.1, 0),
    (2, [101.0, 99.5], 0.0, 0.5, 1),  # a clock ahead counts nothing, not less
    (2, [99.0, 99.0], 0.0, 0.0, 0),  # no pace known: nothing
    (2, [99.0, 99.0], 0.0, -0.1, 0),
    # A worker with nothing readable yet counts from the shard's first start.
    (2, [99.5], 98.0, 0.5, 5),
    (3, [99.5], 98.0, 0.5, 9),
    (2, [99.5], 0.0, 0.5, 1),  # first start not known: it counts as nothing
    (2, [], 99.0, 0.5, 4),
    (2, [99.5], 0.5, 0.5, 200),  # any start after the epoch is one
    # The newest PROCESSES lives are the workers now: a replaced one's end is left out.
    (2, [90.0, 99.5, 99.0], 0.0, 0.5, 3),
    (1, [99.0, 90.0], 0.0, 0.5, 2),
    (0, [99.0], 0.0, 0.5, 0),
])
def test_probably_done_by(processes: int, ends: list[float], first_start: float,
                          seconds: float, done: int) -> None:
    assert probably_done_by(processes, 100.0, ends, first_start, seconds) == done
