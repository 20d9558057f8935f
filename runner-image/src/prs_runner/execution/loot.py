"""Work stealing between shards: who owns a mini-batch after the steals so far, and what an
idle shard takes. Pure.

Every mini-batch starts with the shard the plan gave it. A shard with nothing left writes a
steal mark that moves part of another shard's remaining mini-batches to itself. Marks are
applied in the order of their names (the time they were written, then victim and thief):
a mark moves only the mini-batches its victim still owned at that point, so every reader of
the same marks gets the same owners, whatever order it read them in.

Why the output stays exactly once and in order: ownership only decides who runs a
mini-batch, never what is committed. A victim that ran a mini-batch before it saw the mark
that took it, and the thief that ran it too, both commit a record; every reader (resume and
merge) counts the same one of them (commit_index.chosen). No mini-batch is ever dropped:
the shard that owns it under the marks it has read runs it unless it is committed, and a
shard reads the marks again before it takes or gives up work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

LEAST = 2  # fewer left than this beyond what its workers hold: not worth a mark


@dataclass(frozen=True)
class Mark:
    name: str  # sorts by the time the mark was written
    victim: int
    thief: int
    ids: tuple[int, ...]


def owners_after(planned: Callable[[int], int | None],
                 marks: Iterable[Mark]) -> dict[int, int]:
    """The mini-batches whose owner the MARKS changed, and their owner now; PLANNED gives
    a mini-batch's shard in the plan (None: the plan has no such mini-batch)."""
    moved: dict[int, int] = {}
    for mark in sorted(marks, key=lambda m: m.name):
        for mb_id in mark.ids:
            if moved.get(mb_id, planned(mb_id)) == mark.victim:
                moved[mb_id] = mark.thief
    return moved


def owned_by(shard: int, planned_ids: Iterable[int], moved: Mapping[int, int]) -> list[int]:
    """SHARD's mini-batches, in id order: those the plan gave it (PLANNED_IDS) that no mark
    moved, and those marks moved to it."""
    own = {mb_id for mb_id in planned_ids if mb_id not in moved}
    own.update(mb_id for mb_id, owner in moved.items() if owner == shard)
    return sorted(own)


def remaining_counts(shards: int, planned_left: Callable[[int], int],
                     moved_left: Iterable[tuple[int, int]]) -> list[int]:
    """How many mini-batches each of SHARDS shards owns and has not committed, with
    PLANNED_LEFT(shard): how many of those the plan gave it have no commit, and MOVED_LEFT:
    (planned shard, owner now) of each moved mini-batch that has no commit. Counts, not
    lists: a thief's memory does not grow with the input."""
    left = [planned_left(shard) for shard in range(shards)]
    for planned, owner in moved_left:
        left[planned] -= 1
        left[owner] += 1
    return left


def pick_victim(left: Sequence[int], thief: int, keep: int) -> int:
    """The shard THIEF takes from: the one with the most LEFT, the lower one on a tie, if it
    has LEAST more than the first KEEP (those its workers probably hold already); else -1."""
    others = [(count, -shard) for shard, count in enumerate(left)
              if shard != thief and count - keep >= LEAST]
    return -max(others)[1] if others else -1


def loot_of(ids: Sequence[int], keep: int) -> list[int]:
    """What a thief takes of its victim's remaining IDS: the later half (in id order, so the
    ones its owner reaches last) of those beyond the first KEEP; the owner keeps the larger
    half."""
    rest = sorted(ids)[keep:]
    return rest[len(rest) - len(rest) // 2 :]
