"""Work stealing, the pure part: owners after the marks, and what an idle shard takes."""

from __future__ import annotations

import pytest

from prs_runner.execution.loot import LEAST, Mark, owned_by, owners_after, pick_loot

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
    ([Mark("a", 1, 2, (2, 5)), Mark("b", 0, 1, (2,))], {2: 1, 5: 2}),
    # An id the plan does not have is ignored.
    ([Mark("a", 0, 1, (99,))], {}),
])
def test_owners_after_the_marks(marks: list[Mark], moved: dict[int, int]) -> None:
    assert owners_after(PLANNED.get, marks) == moved


def planned_ids(shard: int) -> list[int]:
    return [mb_id for mb_id, owner in PLANNED.items() if owner == shard]


def test_owned_by_a_shard_in_id_order() -> None:
    moved = {2: 1, 4: 0, 5: 2}
    assert owned_by(0, planned_ids(0), moved) == [0, 1, 4]
    assert owned_by(1, planned_ids(1), moved) == [2, 3]
    assert owned_by(2, planned_ids(2), moved) == [5]
    assert owned_by(3, planned_ids(3), moved) == []
    assert owned_by(0, planned_ids(0), {}) == [0, 1, 2]


@pytest.mark.parametrize(("remaining", "keep", "loot"), [
    ({0: [], 1: [5, 6, 7, 8]}, 0, (1, [7, 8])),
    ({0: [], 1: [8, 5, 7, 6]}, 0, (1, [7, 8])),  # in id order, whatever the input order
    ({0: [], 1: [5, 6, 7, 8, 9]}, 0, (1, [8, 9])),  # the smaller half: the owner keeps more
    ({0: [], 1: [5, 6]}, 0, (1, [6])),
    ({0: [], 1: [5]}, 0, (-1, [])),  # fewer than LEAST
    ({0: [], 1: [5, 6, 7, 8, 9, 10]}, 4, (1, [10])),  # the first KEEP stay with the owner
    ({0: [], 1: [5, 6, 7, 8, 9]}, 4, (-1, [])),
    ({0: [], 1: [5, 6, 7], 2: [1, 2, 3, 4]}, 0, (2, [3, 4])),  # the longest
    ({0: [], 1: [5, 6], 2: [1, 2]}, 0, (1, [6])),  # a tie: the lower shard
    ({0: [1, 2, 3, 4]}, 0, (-1, [])),  # never from itself
    ({}, 0, (-1, [])),
])
def test_pick_loot(remaining: dict[int, list[int]], keep: int,
                   loot: tuple[int, list[int]]) -> None:
    assert pick_loot(remaining, 0, keep) == loot


def test_least_is_two() -> None:
    assert LEAST == 2
