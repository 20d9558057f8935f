"""One shard's side of work stealing (see loot): the steal marks under `_prs/steals/`, read
again every BALANCE_SECONDS, and the marks this shard writes when it runs out of work.

A mark is one small file written whole (write-then-publish, or one object upload), named by
the time it was written, so the marks sort the same for every shard and every pod; nothing
but the output's storage is shared, and the operator stays out of the data path.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import deque
from collections.abc import Collection

from prs_runner.execution.loot import (
    Mark,
    loot_of,
    owned_by,
    owners_after,
    pick_victim,
    remaining_counts,
)
from prs_runner.output.committed_set import CommittedSet
from prs_runner.planning.plan import PlanHeader
from prs_runner.storage.filesystem import Storage

STEALS_DIR = "_prs/steals"
BALANCE_SECONDS = 0.5  # how often a shard reads the marks, and how often an idle one tries
FRESH_SECONDS = 0.05  # marks older than this are read again before work is sent to a worker


class Balancer:
    def __init__(self, output: Storage, plan: PlanHeader, shard: int, held: int) -> None:
        """HELD: how many mini-batches a shard's workers hold at most while they run
        slow ones (those a thief leaves to their owner)."""
        self.output, self.plan, self.shard, self.held = output, plan, shard, held
        self.marks: dict[str, Mark] = {}
        self.moved: dict[int, int] = {}
        self.read_at = 0.0
        self.gave_up = 0.0  # when the last try to take work found none
        self.committed = CommittedSet(output, plan.mini_batch_count)
        # How old the marks may be when work is sent: a listing is cheap on a local folder,
        # a billed request on an object store.
        self.fresh = FRESH_SECONDS if output.local is not None else BALANCE_SECONDS

    def take(self, last: bool, held: Collection[int]) -> list[int]:
        """Work taken from another shard, if any, but what this shard's workers HELD; tried
        at most every BALANCE_SECONDS but when it is the LAST try before this shard ends."""
        if time.monotonic() - self.gave_up < BALANCE_SECONDS and not last:
            return []
        taken = self.steal(self.committed.refresh(), held)
        if not taken:
            self.gave_up = time.monotonic()
        return taken

    def prune(self, pending: deque[int], every: float = BALANCE_SECONDS) -> deque[int]:
        """PENDING without what another shard took, reading the marks if they are older
        than EVERY seconds."""
        if not self.due(every) or not self.refresh():
            return pending
        owned = set(self.owned())
        return deque(mb_id for mb_id in pending if mb_id in owned)

    def refresh(self) -> bool:
        """Read the marks written since the last time; whether there were any."""
        self.read_at = time.monotonic()
        new = [name for name in self.output.list_names(STEALS_DIR)
               if name.endswith(".json") and name not in self.marks]
        shards = range(self.plan.node_count)
        for name in new:
            with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
                data = json.loads(self.output.read_bytes(f"{STEALS_DIR}/{name}"))
                mark = Mark(name, int(data["victim"]), int(data["thief"]),
                            tuple(int(i) for i in data["ids"]))
                # One this plan's shards could not have written (a copy from elsewhere, a
                # hand-made one) moves nothing: each mini-batch keeps an owner that runs.
                valid = mark.victim in shards and mark.thief in shards
                self.marks[name] = mark if valid else Mark(name, mark.victim, mark.thief, ())
        if new:
            self.moved = owners_after(self.planned, self.marks.values())
        return bool(new)

    def due(self, every: float = BALANCE_SECONDS) -> bool:
        return time.monotonic() - self.read_at >= every

    def planned(self, mb_id: int) -> int | None:
        return self.plan.shard_of(mb_id) if 0 <= mb_id < self.plan.mini_batch_count else None

    def owned(self) -> list[int]:
        return owned_by(self.shard, self.plan.shard_ids(self.shard), self.moved)

    def steal(self, committed: CommittedSet, held: Collection[int]) -> list[int]:
        """Take part of the shard with the most left (none committed, none this shard's
        workers HELD: they run them already, as a victim that took them, unseen yet); the
        ids taken."""
        self.refresh()
        shard_ids = self.plan.shard_ids
        left = remaining_counts(
            self.plan.node_count,
            lambda shard: len(shard_ids(shard)) - committed.count_in(shard_ids(shard)),
            ((self.plan.shard_of(mb_id), owner) for mb_id, owner in self.moved.items()
             if mb_id not in committed))
        victim = pick_victim(left, self.shard, self.held)
        if victim < 0:
            return []
        owned = owned_by(victim, shard_ids(victim), self.moved)
        ids = loot_of([mb_id for mb_id in owned if mb_id not in committed
                       and mb_id not in held], self.held)
        if not ids:
            return []
        name = f"{time.time_ns():016x}-{victim}-{self.shard}.json"
        mark = {"victim": victim, "thief": self.shard, "ids": ids}
        self.output.write_atomic(f"{STEALS_DIR}/{name}", json.dumps(mark).encode())
        self.refresh()
        return [mb_id for mb_id in ids if self.moved.get(mb_id) == self.shard]
