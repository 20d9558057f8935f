"""What one shard has to run, in order: its share of the plan (or, while the plan is still
being cut, the openings shard 0 runs meanwhile), less what an earlier life of the shard
committed, plus what it takes from another shard's tail when it runs out (steals).

The shard supervisor (execution.shard) pops the queue and puts tries back at its front; this
module decides what is in it.
"""

from __future__ import annotations

from collections import deque

from prs_runner.execution.shard_outcome import counts_of
from prs_runner.execution.steals import Balancer
from prs_runner.output.commit_index import chosen
from prs_runner.output.commit_log import read_commits
from prs_runner.output.results import SUCCEEDED
from prs_runner.planning.plan import MiniBatch
from prs_runner.planning.plan_store import OpeningView, PlanView
from prs_runner.step.thresholds import Counts
from prs_runner.storage.filesystem import Storage


class ShardWork:
    """The queue of one shard (`pending`, in the order they run) and where it comes from."""

    def __init__(self, output: Storage, index: int, processes: int) -> None:
        """PROCESSES: its workers."""
        self.output, self.index, self.processes = output, index, processes
        self.plan: PlanView | None = None
        self.opening: OpeningView | None = None  # shard 0, while the plan is being cut
        self.opened: set[int] = set()  # ids taken up from openings
        self.balancer: Balancer | None = None  # with more than one shard
        self.total = 0  # mini-batches in the whole plan, once it is known
        self.pending: deque[int] = deque()

    def adopt(self, plan: PlanView) -> None:
        self.plan, self.total = plan, plan.header.mini_batch_count
        if plan.header.node_count > 1:
            self.balancer = Balancer(self.output, plan.header, self.index, self.processes)

    def owned(self) -> list[int]:
        assert self.plan is not None
        if self.balancer is None:
            return list(self.plan.header.shard_ids(self.index))
        self.balancer.refresh()
        return self.balancer.owned()

    def resume(self) -> Counts:
        """Queue this shard's share of the plan (those not opened already); the counts of
        those an earlier life committed."""
        return self.take_up([mb_id for mb_id in self.owned() if mb_id not in self.opened])

    def open(self, opening: OpeningView) -> Counts | None:
        """Queue the mini-batches published since the last look; None when there are none."""
        ids = opening.new_ids()
        if not ids:
            return None
        self.opening = opening
        self.opened.update(ids)
        return self.take_up(ids)

    def take_up(self, ids: list[int]) -> Counts:
        """Queue those of IDS not committed by an earlier life; the counts of the others."""
        wanted = set(ids)
        committed = chosen(read_commits(self.output, wanted.__contains__))
        counts = Counts()
        for mb_id in ids:
            commit = committed.get(mb_id)
            if commit is not None and commit.header.status == SUCCEEDED:
                counts += counts_of(commit.header)
            else:
                self.pending.append(mb_id)
        return counts

    def take(self, last: bool, held: set[int]) -> bool:
        """Take work from another shard's tail, but what this shard's workers HELD (LAST:
        the try this shard ends with is never skipped); whether any was taken."""
        taken = self.balancer.take(last, held) if self.balancer is not None else []
        self.pending.extend(taken)
        return bool(taken)

    def waiting(self) -> bool:
        """Whether this shard waits for another's first commits before it can take work."""
        return self.balancer is not None and self.balancer.waiting()

    def committed(self, mb_id: int) -> None:
        """MB_ID is committed by this shard: a thief of this shard does not take it back
        before its commit can be read (an object store's commits are flushed about once a
        second)."""
        if self.balancer is not None:
            self.balancer.committed.add(mb_id)

    def ran(self) -> None:
        """A mini-batch of this shard ended: the first one starts the wait for another
        shard's first commits (execution.steals.Balancer.early)."""
        if self.balancer is not None:
            self.balancer.ran()

    def prune(self, every: float) -> bool:
        """Read the steal marks now and then; drop what another shard took from the queue.
        Whether new marks were read."""
        pruned = None if self.balancer is None else self.balancer.prune(self.pending, every)
        if pruned is None:
            return False
        self.pending = pruned
        return True

    def owns(self, mb_id: int) -> bool:
        """Whether this shard owns MB_ID under the steal marks it has read."""
        return self.balancer.owns(mb_id) if self.balancer is not None else True

    def mini_batch(self, mb_id: int) -> MiniBatch:
        view = self.plan if self.plan is not None else self.opening
        assert view is not None
        return view[mb_id]
