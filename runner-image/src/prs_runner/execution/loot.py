"""Work stealing between shards: who owns a mini-batch after the steals so far, in the
order its owner runs them, and what an idle shard takes. Pure.

Every mini-batch starts with the shard the plan gave it. A shard with nothing left writes a
steal mark that moves part of another shard's remaining mini-batches to itself. Marks are
applied in the order of their names (the time they were written, then victim and thief):
a mark moves only the mini-batches its victim still owned at that point, so every reader of
the same marks gets the same owners, whatever order it read them in.

A shard runs its share of the plan in id order, then what it took, mark by mark, in the
order each mark lists them (it takes only once its queue is empty). Every reader derives the
same order from the marks (owned_by), so a thief takes what its victim reaches last: not
what the victim is running, or ran a moment ago and whose commit the thief cannot see yet
(an object store's commits are flushed about once a second).

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
                moved.pop(mb_id, None)  # the dict's order is the order of the last moves
                moved[mb_id] = mark.thief
    return moved


def owned_by(shard: int, planned_ids: Iterable[int], moved: Mapping[int, int]) -> list[int]:
    """SHARD's mini-batches in the order it runs them: those the plan gave it (PLANNED_IDS,
    in id order) that no mark moved, then those marks moved to it, in the order of the
    moves (MOVED as owners_after orders it)."""
    own = sorted(mb_id for mb_id in planned_ids if mb_id not in moved)
    return own + [mb_id for mb_id, owner in moved.items() if owner == shard]


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
    """What a thief takes of its victim's remaining IDS (in the order the victim runs them):
    the later half of those beyond the first KEEP, the ones the victim reaches last; the
    owner keeps the larger half."""
    rest = list(ids)[keep:]
    return rest[len(rest) - len(rest) // 2 :]


def probably_done_by(processes: int, now: float, ends: Iterable[float], first_start: float,
                     seconds: float) -> int:
    """How many mini-batches a shard of PROCESSES workers, SECONDS each, has probably
    finished since the newest of its commits a thief can read (an object store's commits
    show about a second late): its remaining list begins with them, so a thief leaves them
    to it rather than run them again. Worker by worker: each flushes its commits on its
    own, so one may show what it ran a moment ago while another shows nothing of the last
    second. ENDS: the newest readable end of each worker life; the newest PROCESSES of
    them are the shard's workers now (an older life was replaced). A worker none of whose
    commits can be read yet counts from FIRST_START, when the shard's first readable run
    began (0: not known, it counts as nothing). A clock behind counts nothing."""
    if seconds <= 0:
        return 0
    latest = sorted(ends)[-processes:] if processes > 0 else []
    unread = now - first_start if first_start > 0 else 0.0
    sinces = [now - end for end in latest] + [unread] * (processes - len(latest))
    return int(sum(max(since, 0.0) for since in sinces) / seconds)
