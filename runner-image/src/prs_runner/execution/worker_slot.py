"""A shard supervisor's view of one worker process: its pipes, what it has been sent, and
how many mini-batches to keep queued for it.

The queue depth follows the worker's pace: deep enough that a fast worker never waits for
its next command (one write sends many), shallow enough that slow mini-batches stay in the
shard's queue, where an idle worker of this or another shard can take them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

QUEUED_SECONDS = 0.05  # of work kept queued for a worker once its pace is known
SHALLOWEST, DEEPEST = 1, 64  # slow ones: one at a time (a round trip is ~1 ms)
FIRST_DEPTH = 4  # queued for a worker before its pace is known (fair_share caps it)
PACE_WEIGHT = 0.2  # of the newest measurement in the moving average


@dataclass
class Slot:
    index: int
    pid: int = 0
    commands: int = -1
    events: int = -1
    buffer: bytearray = field(default_factory=bytearray)  # the start of its next line
    queue: deque[int] = field(default_factory=deque)
    ran: set[int] = field(default_factory=set)  # run to the end, their commit not yet written
    told: int = 0  # of the mini-batches this life committed, those its 'done's said or read
    read_early: set[int] = field(default_factory=set)  # read in its log before its 'done'
    life: str = ""
    head_started: float = 0.0
    ready: bool = False
    said: bool = False  # whether this life has said anything of a mini-batch
    commands_sent: list[int] = field(default_factory=list)  # this life's runs, in order
    init_failures: int = 0
    dead: bool = False
    depth: int = FIRST_DEPTH
    pace: float = 0.0  # seconds per mini-batch, a moving average
    last_done: float = 0.0
    settling: int = 0  # mini-batches of the old kind still to finish after new_work()

    def doing(self, now: float) -> str:
        """What the worker is doing, for a message about a shard that makes no progress."""
        if self.dead:
            return "gave up after init() failed"
        if not self.ready:
            return "in init()"
        if self.running():
            head = next(mb_id for mb_id in self.queue if mb_id not in self.ran)
            return f"in run() of mini-batch {head} for {now - self.head_started:.0f} s"
        return "idle"

    def running(self) -> bool:
        """Whether the worker is in run() (it holds mini-batches it has not run to the end)."""
        return self.ready and len(self.queue) > len(self.ran)

    def wants(self) -> int:
        """How many mini-batches to send it now: none while it holds more than half its
        depth, else enough to fill it (commands go out in bulk, not one per finished one)."""
        held = len(self.queue) - len(self.ran)  # those that ran wait only for their commit
        if not self.ready or held > self.depth // 2:
            return 0
        return self.depth - held

    def sent(self, now: float) -> None:
        """Work was sent; an idle worker's pace is measured from now, not from its last."""
        if len(self.queue) == len(self.ran):
            self.last_done = now

    def new_work(self) -> None:
        """Work of another kind is coming (taken from another shard, which found it slow):
        forget the pace, so that this worker is not sent many of it at once, and measure it
        again only once what it already holds (of the old kind) has finished."""
        self.pace, self.depth, self.settling = 0.0, SHALLOWEST, len(self.queue)

    def finished(self, count: int, now: float) -> None:
        """COUNT mini-batches finished at NOW: the pace, and the depth it sets."""
        if count <= 0:
            return
        if self.settling:
            self.settling = max(self.settling - count, 0)
            self.last_done = now
            return
        seconds = max(now - self.last_done, 0.0) / count
        self.pace = seconds if not self.pace else (
            (1 - PACE_WEIGHT) * self.pace + PACE_WEIGHT * seconds)
        target = int(QUEUED_SECONDS / max(self.pace, 1e-9))
        # At most twice as deep at each finish: one quick mini-batch (an empty file, a
        # cached answer) set a depth of 64, and a slow one behind it held 63 more back
        # while the other workers idled.
        self.depth = max(SHALLOWEST, min(DEEPEST, target, 2 * self.depth))
        self.last_done = now


    def said_ran(self, mb_id: int, now: float) -> None:
        """It ran MB_ID to the end at NOW (on an object store; its commit follows): its next
        mini-batch runs from now."""
        self.ran.add(mb_id)
        self.head_started = now
        self.finished(1, now)

    def said_done(self, done: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        """It said DONE (its 'done's, at NOW, in the order of its queue): those not read in
        its log already (read_in_log), off its queue."""
        fresh = done
        if self.read_early:
            fresh = [one for one in done if one["done"] not in self.read_early]
            self.read_early.difference_update(one["done"] for one in done)
        unsaid = sum(one["done"] not in self.ran for one in fresh)
        if unsaid:  # finished now, as far as the shard knows (not said as 'ran' before)
            self.head_started = now
            self.finished(unsaid, now)
        self.told += len(fresh)
        for _ in fresh:
            self.ran.discard(self.queue.popleft())
        return fresh

    def read_in_log(self, mb_id: int) -> None:
        """MB_ID, the head of its queue, was read committed in its log before it said so:
        off the queue, and not counted again when its 'done' comes."""
        self.queue.popleft()
        self.told += 1
        self.read_early.add(mb_id)


def fair_share(pending: int, workers: int) -> int:
    """The most a worker is sent at once of PENDING mini-batches, WORKERS of them live (the
    ready and those still starting): its share, rounded up. A worker that came first took
    four of a few long mini-batches, the next four more, and the others had none (twice
    the time for 8 of them over 4 workers)."""
    return -(-pending // max(workers, 1))
