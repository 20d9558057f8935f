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

from prs_runner.execution.committer import FLUSH_SECONDS
from prs_runner.execution.loot import (
    Mark,
    loot_of,
    owned_by,
    owners_after,
    pick_victim,
    probably_done_by,
    remaining_counts,
)
from prs_runner.execution.worker_slot import SHALLOWEST
from prs_runner.output.committed_set import CommittedSet
from prs_runner.planning.plan import PlanHeader
from prs_runner.storage.filesystem import Storage

STEALS_DIR = "_prs/steals"
BALANCE_SECONDS = 0.5  # how often a shard reads the marks, and how often an idle one tries
FRESH_SECONDS = 0.05  # marks older than this are read again before work is sent to a worker


class Balancer:
    def __init__(self, output: Storage, plan: PlanHeader, shard: int, processes: int) -> None:
        """PROCESSES: a shard's workers."""
        self.output, self.plan, self.shard, self.processes = output, plan, shard, processes
        # How many mini-batches the workers hold at most while they run slow ones: what a
        # thief leaves to their owner.
        self.held = processes * SHALLOWEST
        self.started = time.time()  # about when every shard began
        self.first_end = 0.0  # when the first mini-batch of this shard ended
        # How late another shard's commits show: a worker flushes them about once a second
        # on an object store, and a look at them is a listing or more.
        self.lag = 0.0 if output.local is not None else FLUSH_SECONDS + BALANCE_SECONDS
        self.awaits_commits = False
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
        at most every BALANCE_SECONDS but when it is the LAST try before this shard ends
        (while it waits for a victim's first commits, none is the last)."""
        throttled = time.monotonic() - self.gave_up < BALANCE_SECONDS
        if throttled and (not last or self.waiting()):
            return []
        taken = self.steal(self.committed.refresh(), held)
        if not taken:
            self.gave_up = time.monotonic()
        return taken

    def waiting(self) -> bool:
        """Whether this shard, with nothing to do, waits for another's first commits to show
        before it takes any of its work (execution.steals.Balancer.steal)."""
        return self.awaits_commits and self.early()

    def early(self) -> bool:
        """Whether another shard's first commits may not show yet: in the first `lag`
        seconds after this shard's first mini-batch ended (the shards start their workers
        alike: a slow import or init() delays the first commits of all), or after it
        began when none has."""
        return time.time() - (self.first_end or self.started) < self.lag

    def ran(self) -> None:
        """A mini-batch of this shard ended (its commit may follow a second later)."""
        self.first_end = self.first_end or time.time()

    def prune(self, pending: deque[int], every: float = BALANCE_SECONDS) -> deque[int] | None:
        """PENDING without what another shard took, reading the marks if they are older
        than EVERY seconds; None when no new mark was read."""
        if not self.due(every) or not self.refresh():
            return None
        owned = set(self.owned())
        return deque(mb_id for mb_id in pending if mb_id in owned)

    def owns(self, mb_id: int) -> bool:
        """Whether this shard owns MB_ID under the marks read."""
        return self.moved.get(mb_id, self.planned(mb_id)) == self.shard

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

    def unseen(self, committed: CommittedSet, shard: int) -> int | None:
        """How many of SHARD's remaining mini-batches it has probably run since its newest
        commit this shard can read (loot.probably_done_by); None while none can be read yet,
        early in the run, on storage where commits show late (it may have run them all)."""
        seen = committed.paces.get(shard)
        if seen is None or not seen.ends:
            return None if self.early() else 0
        return probably_done_by(self.processes, time.time(), seen.ends.values(),
                                seen.first_start, seen.seconds)

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
        self.awaits_commits = False
        if victim < 0:
            return []
        unseen = self.unseen(committed, victim)
        if unseen is None:  # what it has left is not known yet
            self.awaits_commits = True
            return []
        owned = owned_by(victim, shard_ids(victim), self.moved)
        ids = loot_of([mb_id for mb_id in owned if mb_id not in committed
                       and mb_id not in held], self.held + unseen)
        if not ids:
            return []
        name = f"{time.time_ns():016x}-{victim}-{self.shard}.json"
        mark = {"victim": victim, "thief": self.shard, "ids": ids}
        self.output.write_atomic(f"{STEALS_DIR}/{name}", json.dumps(mark).encode())
        self.refresh()
        return [mb_id for mb_id in ids if self.moved.get(mb_id) == self.shard]
