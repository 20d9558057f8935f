"""What a shard does when a try fails, a worker dies or hangs, its init() fails, or it says
what no worker says: the base of the shard supervisor (execution.shard), which keeps the
queue, the workers and the account these change.

A mini-batch a worker held goes back to the queue with no try spent unless that worker was
running it (a failed try, committed as a failure once none is left) or ran it to the end
and died before its commit more than runMaxTry times.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Any

from prs_runner.execution.processes import kill_group
from prs_runner.execution.queue_reconciliation import settle_lost
from prs_runner.execution.shard_account import ShardAccount
from prs_runner.execution.shard_work import ShardWork
from prs_runner.execution.shard_workers import WorkerProcesses
from prs_runner.execution.stray_writes import void_unsent
from prs_runner.execution.worker_slot import Slot
from prs_runner.output.commit_log import CommitLog, read_life
from prs_runner.output.results import FAILED as FAILED_STATUS
from prs_runner.output.results import ResultHeader
from prs_runner.step.thresholds import Counts
from prs_runner.storage.filesystem import Storage

INIT_MAX_TRIES = 3


class ShardFailures:
    spec: dict[str, Any]
    index: int
    output: Storage
    slots: list[Slot]
    processes: WorkerProcesses
    account: ShardAccount
    work: ShardWork
    log: CommitLog  # the failures this shard commits

    def dispatch(self, slot: Slot) -> None:
        raise NotImplementedError

    def report(self, force: bool = False) -> None:
        raise NotImplementedError

    def replace_stray(self, slot: Slot, error: dict[str, str]) -> None:
        """SLOT's worker said something no runner says (its script wrote to its pipes, the
        ERROR says what): what it says next cannot be trusted, so a new worker runs on."""
        kill_group(slot.pid)
        self.say_replaced(error)
        self.lose_worker(slot, error)
        self.account.remember_error(error, None)  # said even where no try failed

    def replace_unstarted(self, slot: Slot, error: dict[str, str]) -> None:
        """SLOT's worker read no command before its first (its init() wrote to its pipe, or
        a thread it started did): it ran nothing, so its mini-batches go back with no try
        spent, and the error counts as an init() failure (a worker that fails so every time
        ends the step InitFailed, not each mini-batch tried until it fails)."""
        self.say_replaced(error)
        back = list(slot.queue)
        self.processes.retire(slot)
        self.give_back(back)
        self.fail_init(slot, error)
        for other in self.slots:
            self.dispatch(other)

    def say_replaced(self, error: dict[str, str]) -> None:
        print(f"shard {self.index}: {error['message']}; a new worker runs on", file=sys.stderr,
              flush=True)

    def give_back(self, mb_ids: list[int]) -> None:
        """MB_IDS, sent to a worker that did not run them, go back to the queue's head with
        no try spent (not the script's)."""
        for mb_id in mb_ids:
            self.account.tries[mb_id] -= 1
        self.work.pending.extendleft(reversed(mb_ids))

    def fail_try(self, mb_id: int, error: dict[str, Any], process: int,
                 seconds: float) -> None:
        """A try of MB_ID failed in worker PROCESS after SECONDS; the last one is committed
        as a failure, with that worker and time (the report shows where it ran)."""
        if self.account.retry(mb_id, error, process):
            self.work.pending.appendleft(mb_id)
            return
        items, tries = self.work.mini_batch(mb_id).item_count, self.account.tries[mb_id]
        header = ResultHeader(
            id=mb_id, shard=self.index, process=process, tries=tries, items=items,
            succeeded=0, failed=items, seconds=round(seconds, 6), status=FAILED_STATUS,
            error={"type": error["type"], "message": error["message"]},
            started=round(time.time() - seconds, 6),  # the last try's, on the report's timeline
        )
        self.log.add(header, b"")
        self.log.flush()
        self.work.committed(mb_id)
        self.account.count(mb_id, Counts(0, 1, 0, items, 0))
        self.account.check_thresholds()
        self.report(force=True)

    def fail_init(self, slot: Slot, error: dict[str, Any], lasting: bool = False) -> None:
        """Called once the slot is retired: start it again, or give it up (at once when the
        error is LASTING: a fresh process would raise it again)."""
        self.account.remember_error(error, None)
        slot.init_failures += 1
        if slot.init_failures < INIT_MAX_TRIES and not lasting:
            self.processes.start(slot)
        else:
            slot.dead = True

    def lose_worker(self, slot: Slot, error: dict[str, Any]) -> None:
        """A worker died or was killed. Its log says which of its mini-batches are committed:
        those are done; those it ran to the end but had not committed, and those it had not
        started, go back to the queue; the one it was running failed a try."""
        queue, ran, was_ready = deque(slot.queue), set(slot.ran), slot.ready
        life, sent = slot.life, slot.commands_sent
        self.processes.retire(slot)
        if not was_ready:
            self.fail_init(slot, {**error, "traceback": ""})
            return
        commits = read_life(self.output, life)
        forged = {id(c) for c in void_unsent(self.output, commits, sent)}
        lost = settle_lost(queue, ran, {c.header.id: c.header
                                        for c in commits if id(c) not in forged})
        for header in lost.done:
            self.account.finish(header.id, vars(header))
        back = [mb_id for mb_id in lost.back
                if not self.lost_uncommitted(mb_id, ran, error, slot.index)]
        self.give_back(back)
        running, started = lost.running, slot.head_started
        if lost.running_since:
            started = max(started, monotonic_of(lost.running_since))
        if running is not None:
            self.fail_try(running, {**error, "message": f"{error['message']} "
                                    f"(mini-batch {running}, try {self.account.tries[running]})"},
                          slot.index, time.monotonic() - started)
        self.processes.start(slot)
        self.dispatch(slot)

    def lost_uncommitted(self, mb_id: int, ran: set[int], error: dict[str, Any],
                         process: int) -> bool:
        """MB_ID ran to the end and its worker died before its commit: it runs again, free
        at most runMaxTry times; past that each such loss is a failed try (a worker that
        dies there every time must not run it for ever). True when it was one."""
        if mb_id not in ran:
            return False
        self.account.uncommitted[mb_id] = lost = self.account.uncommitted.get(mb_id, 0) + 1
        if lost <= self.spec["runMaxTry"]:
            return False
        message = (f"{error['message']} (mini-batch {mb_id}: run() returned, and its commit "
                   f"was lost {lost} times)")
        self.fail_try(mb_id, {**error, "message": message}, process, 0.0)
        return True


def monotonic_of(moment: float) -> float:
    """MOMENT (Unix seconds, in the past) on time.monotonic()'s clock."""
    return time.monotonic() - max(time.time() - moment, 0.0)
