"""A shard supervisor: runs one shard's mini-batches on `processCountPerNode` workers.

The same code runs under `prs run` (one supervisor process per shard) and as the command of
an Indexed Job pod (`prs-runner shard --index $JOB_COMPLETION_INDEX`). It resumes from the
committed results, retries failed tries, replaces crashed or timed-out workers, enforces the
thresholds on what it has seen, reports cumulative progress as JSON lines on stdout, and ends
with the shard's outcome in `_prs/shards/<index>.json` (and the termination message file).
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Callable
from typing import Any

from prs_runner.execution.cpu_share import pod_process_count
from prs_runner.execution.deferred_stops import DeferredStops
from prs_runner.execution.memory_kills import read_memory_cgroup, worker_death
from prs_runner.execution.processes import kill_group, reap, stop_idle
from prs_runner.execution.queue_reconciliation import ended_at, fits, read_ahead
from prs_runner.execution.shard_account import ShardAccount
from prs_runner.execution.shard_failures import ShardFailures, monotonic_of
from prs_runner.execution.shard_outcome import Outcome, emit
from prs_runner.execution.shard_work import ShardWork
from prs_runner.execution.shard_workers import WorkerProcesses
from prs_runner.execution.steals import BALANCE_SECONDS
from prs_runner.execution.stray_writes import check_after_stop
from prs_runner.execution.worker_messages import (
    decode_events,
    encode_command,
    stray_command_error,
    stray_error,
    take_lines,
    unfit_error,
)
from prs_runner.execution.worker_slot import Slot, fair_share
from prs_runner.output.commit_log import CommitLog, life_name, read_life_after
from prs_runner.planning.plan_store import OpeningView, PlanView
from prs_runner.step.spec import progress_timeout
from prs_runner.storage.filesystem import Storage
from prs_runner.storage.local_staging import STAGING_FOLDER, LocalStaging
from prs_runner.storage.object_reads import requests_made
from prs_runner.storage.scratch import Scratch

PROGRESS_INTERVAL = 0.25
PLAN_POLL_SECONDS = 0.005  # while workers start up, the plan is being written
# On an object store each look for the plan (and its openings) is a request or two.
REMOTE_PLAN_POLL_SECONDS = 0.05


class ShardSupervisor(ShardFailures):
    """Runs one shard's mini-batches on processCountPerNode workers. Without a plan yet, it
    starts the workers (imports, init()) and waits for the plan to appear at plan_uri."""

    def __init__(self, spec: dict[str, Any], plan_uri: str, index: int, code_root: str,
                 plan: PlanView | None = None) -> None:
        self.spec, self.plan_uri, self.index, self.code_root = spec, plan_uri, index, code_root
        self.output = Storage(self.spec["output"]["uri"])
        self.running_at_stop: dict[int, int] = {}  # by mini-batch, the worker in it at a stop
        self.stops = DeferredStops()  # its stop handler waits for a reading of messages
        self.slots = [Slot(i) for i in range(self.spec["processCountPerNode"]
                                             or pod_process_count())]
        self.work = ShardWork(self.output, index, len(self.slots))
        self.account = ShardAccount(spec, self.work)
        self.last_report = 0.0
        self.last_progress = time.monotonic()
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.worker_requests = 0  # object-store calls the workers reported
        self.scratch = Scratch(str(index))
        self.staging = LocalStaging(self.output, self.scratch)
        self.processes = WorkerProcesses(spec, plan_uri, index, code_root, self.staging)
        self.log = CommitLog(self.output, life_name(index, "s"))  # the failures it commits
        self.oom_kills = read_memory_cgroup().oom_kills  # the kernel's, for memory
        if plan is not None:
            self.adopt(plan)

    def adopt(self, plan: PlanView) -> None:
        self.work.adopt(plan)
        self.account.check_thresholds()  # a share of failures counts once the total is known

    def run(self) -> Outcome:
        self.processes.warm_up()
        for slot in self.slots:
            self.processes.start(slot)
        if self.work.plan is None:
            self.await_plan()
        if self.work.plan is not None:
            self.account.counts += self.work.resume()
            for slot in self.slots:
                self.dispatch(slot)
        self.last_progress = time.monotonic()
        while self.has_work() and not self.account.stop_reason:
            if self.init_failed_everywhere():
                break
            self.poll()
            self.check_progress()
            self.balance()
            self.report()
        self.stop_workers()
        self.balance(0.0)  # what it ran that another shard took: counted there
        self.log.close()
        published = self.staging.publish()
        outcome = self.outcome()  # which logs hold metrics: read in the staging folder
        self.scratch.remove(keep=None if published else STAGING_FOLDER)  # kept: said
        return outcome

    def await_plan(self) -> None:
        """Shard 0 runs the openings (planning.plan_store) meanwhile: the plan's first
        mini-batches, published while the rest of the input is being cut."""
        opening = OpeningView(self.plan_uri) if self.index == 0 else None
        every = PLAN_POLL_SECONDS if self.output.local is not None else REMOTE_PLAN_POLL_SECONDS
        while not self.account.stop_reason and not self.init_failed_everywhere():
            try:
                self.adopt(PlanView(self.plan_uri))
                return
            except FileNotFoundError:
                if opening is not None:
                    self.open(opening)
                self.poll(every)

    def open(self, opening: OpeningView) -> None:
        committed = self.work.open(opening)
        if committed is not None:
            self.account.counts += committed
            for slot in self.slots:
                self.dispatch(slot)

    def has_work(self) -> bool:
        """Whether anything is left to run here, once more work is taken from another
        shard where this one would idle."""
        if self.work.plan is not None and not self.work.pending and any(
                s.wants() for s in self.slots if not s.dead):
            # The last try before this shard ends is never skipped.
            self.take_work(last=not any(s.queue for s in self.slots))
        return bool(self.work.pending or any(s.queue for s in self.slots)
                    or self.work.waiting())

    def take_work(self, last: bool) -> None:
        if not self.work.take(last, {mb_id for s in self.slots for mb_id in s.queue}):
            return
        for slot in self.slots:
            slot.new_work()
            self.dispatch(slot)

    def balance(self, every: float = BALANCE_SECONDS) -> None:
        """Read the steal marks now and then; drop what another shard took from the queue
        (what a worker already holds runs anyway: both records are kept, one counts)."""
        if self.work.prune(every):
            self.account.disown(self.work.owns)

    def init_failed_everywhere(self) -> bool:
        if not all(s.dead for s in self.slots):
            return False
        error = self.account.first_error
        # One line (where the script raised it included); the traceback is in firstError.
        detail = error.one_line() if error else "no error reported"
        self.account.stop("InitFailed", f"init() failed in every worker: {detail}")
        return True

    def outcome(self) -> Outcome:
        # Once stop_workers() has emptied the queues, what they held when it stopped them.
        running = self.running_at_stop | self.running()
        return self.account.outcome(self.worker_requests + requests_made(),
                                    self.processes.logged_metrics(len(self.slots)),
                                    len(self.slots), running)

    def running(self) -> dict[int, int]:
        """The mini-batch each worker is in (its queue's head) now: worker by mini-batch.
        After a stop, what a worker committed but had not said yet is counted done first."""
        if self.account.stop_reason:
            for slot in self.slots:
                if slot.queue:
                    self.catch_up(slot)  # what it committed, but had not said yet, is done
        running: dict[int, int] = {}
        for slot in self.slots:
            if slot.queue:
                running.setdefault(slot.queue[0], slot.index)
        return running

    def poll(self, longest: float = PROGRESS_INTERVAL) -> None:
        now = time.monotonic()
        timeout = self.spec["runInvocationTimeout"]
        deadlines = [s.head_started + timeout for s in self.slots if s.running()]
        wait = min([longest, *[d - now for d in deadlines]])
        for key, _ in self.processes.selector.select(max(wait, 0.0)):
            with self.stops.held():
                self.read_events(key.data)
        now = time.monotonic()
        for slot in self.slots:
            if slot.running() and now - slot.head_started > timeout:
                self.catch_up(slot)
            if slot.running() and now - slot.head_started > timeout:
                kill_group(slot.pid)
                message = f"run() did not return within runInvocationTimeout={timeout}s"
                self.lose_worker(slot, {"type": "TimeoutError", "message": message})

    def read_events(self, slot: Slot) -> None:
        chunk = os.read(slot.events, 1 << 16)
        if not chunk:
            status = reap(slot.pid)
            memory = read_memory_cgroup()
            error = worker_death(status, status.endswith("(SIGKILL)"), self.oom_kills, memory)
            self.oom_kills = memory.oom_kills
            self.lose_worker(slot, error)
            return
        lines, stray_start = take_lines(slot.buffer, chunk)
        events, stray = decode_events(lines)
        stray = stray if stray is not None else stray_start
        wrong = None if stray is None else stray_error(slot.index, stray)
        pid = slot.pid
        for event in events:
            if slot.pid != pid:
                return  # replaced meanwhile (an init() failed): the rest was the old one's
            if "stray_command" in event or "stopped" in event:
                wrong = stray_command_error(slot.index, event.get("stray_command", "a stop"))
                if not slot.said:  # its first command was not one: init() wrote it
                    self.replace_unstarted(slot, wrong)
                    return
                break
            if not fits(event, slot.queue, slot.ready, slot.read_early,
                        grouped=self.output.local is None):
                wrong = unfit_error(slot.index, event)
                break
            self.handle_event(slot, event)
        if wrong is not None and slot.pid == pid:
            self.replace_stray(slot, wrong)

    def check_progress(self) -> None:
        """NoProgress when no mini-batch finished in this shard for progressUpdateTimeout."""
        limit = progress_timeout(self.spec)
        stalled = time.monotonic() - self.last_progress
        if stalled < limit or self.account.stop_reason:
            return
        for slot in self.slots:
            if slot.running():
                self.catch_up(slot)
        stalled = time.monotonic() - self.last_progress
        if stalled < limit:
            return
        now = time.monotonic()
        doing = "; ".join(f"process {s.index}: {s.doing(now)}" for s in self.slots)
        self.account.stop("NoProgress", f"no mini-batch finished in shard {self.index} for "
                           f"{stalled:.0f} s (progressUpdateTimeout={limit}); {doing}")

    def handle_event(self, slot: Slot, event: dict[str, Any]) -> None:
        if "done" in event or "error" in event or "ran" in event:
            self.last_progress = time.monotonic()
            if not slot.said:
                self.work.ran()
            slot.said = True
        if "ran" in event:  # its commit follows (object stores): the next one runs now
            slot.said_ran(event["ran"], time.monotonic())
        elif "done" in event or "error" in event:
            self.take_ended(slot, event)
        elif "commit_failed" in event:
            mb_id = slot.queue.popleft()
            self.account.tries[mb_id] -= 1  # not the script's try: it runs again after a fix
            self.work.pending.appendleft(mb_id)
            self.account.stop("OutputUnwritable", event["commit_failed"])
        elif "ready" in event:
            slot.ready = True
        elif "init_failed" in event:
            self.processes.retire(slot)
            self.fail_init(slot, event["init_failed"], lasting=event.get("lasting", False))
            return
        self.dispatch(slot)

    def take_ended(self, slot: Slot, event: dict[str, Any]) -> None:
        """A worker's 'done' (its mini-batches committed) or 'error' (a failed try)."""
        if "done" in event:
            self.worker_requests += int(event.get("requests", 0))
            for done in slot.said_done(event["done"], time.monotonic()):
                self.account.finish(done["done"], done)
            return
        mb_id = slot.queue.popleft()
        now = time.monotonic()
        took = event.get("seconds")  # the worker's own measure (its 'done's before may
        # have come with this message, held while it ran)
        self.fail_try(mb_id, event["error"], slot.index,
                      now - slot.head_started if took is None else float(took))
        slot.head_started = now

    def read_unread(self) -> None:
        """At a stop: what the workers said that the shard has not read yet, read without
        waiting, its finished mini-batches finished and its failed tries failed. A worker
        goes on while its messages wait: unread, they left the report calling the mini-batch
        it went on from running, and the one it was in not run. Nothing is sent or started
        (a stopped or killed worker's pipe still holds what it wrote)."""
        for slot in self.slots:
            for event in unread_events(slot):
                if not ("done" in event or "error" in event) or not fits(
                        event, slot.queue, slot.ready, slot.read_early,
                        grouped=self.output.local is None):
                    break
                self.take_ended(slot, event)

    def dispatch(self, slot: Slot) -> None:
        if self.account.stop_reason:
            return  # a stopping shard sends no more work
        if self.work.balancer is not None and slot.wants():
            self.balance(self.work.balancer.fresh)  # not what another shard has just taken
        live = sum(not s.dead for s in self.slots)
        wanted = min(slot.wants(), fair_share(len(self.work.pending), live))
        if not wanted:
            return
        now = time.monotonic()
        if not slot.running():
            slot.head_started = now
        slot.sent(now)
        commands = []
        for _ in range(wanted):
            mb_id = self.work.pending.popleft()
            self.account.tries[mb_id] = tries = self.account.tries.get(mb_id, 0) + 1
            slot.queue.append(mb_id)
            slot.commands_sent.append(mb_id)
            commands.append(encode_command(mb_id, tries))
        # A dead worker's pipe is broken; its EOF returns these mini-batches.
        with contextlib.suppress(BrokenPipeError):
            os.write(slot.commands, b"".join(commands))

    def catch_up(self, slot: Slot) -> None:
        """A local worker holds the 'done's of its last quick mini-batches while its next
        run() runs (execution.committer): read what it committed beyond what it said, so
        that the run() it is in now is timed from its start, and named when the shard
        makes no progress. Their 'done's, when they come, are not counted again."""
        if self.output.local is None:  # there a worker says 'ran' at once
            return
        committed = read_life_after(self.output, slot.life, slot.told)
        ahead = read_ahead(slot.queue, (commit.header for commit in committed))
        for header in ahead:
            slot.read_in_log(header.id)
            self.account.finish(header.id, vars(header) | {"item_error": header.error})  # as said
        ended = max((ended_at(header) for header in ahead), default=0.0)
        if ended:
            moment = monotonic_of(ended)
            slot.head_started = max(slot.head_started, moment)
            self.last_progress = max(self.last_progress, moment)  # another may be later

    def stop_workers(self) -> None:
        """Those with work left (a stop, or its last try) are killed; the others stop."""
        if self.account.stop_reason:  # the tries they are in: 'stopped' in the report
            with self.stops.held():
                for slot in self.slots:  # first stopped where they are: then all they said
                    if slot.pid and not slot.dead:  # and committed is there to read
                        kill_group(slot.pid)
                self.read_unread()
                self.running_at_stop = self.running()
        for slot in self.slots:
            if not (slot.dead or slot.pid == 0) and (self.account.stop_reason or slot.queue):
                self.processes.retire(slot)
        stopped = [s for s in self.slots if not s.dead and s.pid and s.events >= 0]
        stop_idle(self.slots, self.spec["runInvocationTimeout"], f"shard {self.index}")
        for slot in stopped:
            error = check_after_stop(self.output, slot, self.index)
            if error is not None:  # all it ran was said: what it ran on a forged command
                self.account.remember_error(error, None)

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_report >= PROGRESS_INTERVAL:
            self.last_report = now
            report = self.outcome().to_dict(self.index) | {"final": False}
            emit(report)
            for listener in self.listeners:
                listener(report)


def unread_events(slot: Slot) -> list[dict[str, Any]]:
    """The whole messages on SLOT's pipe now, read without waiting; up to the first that is
    no runner message (the shard's loop would replace the worker there)."""
    chunks = []
    with contextlib.suppress(OSError):  # closed meanwhile (a stop within a stop)
        while slot.events >= 0 and select.select([slot.events], [], [], 0)[0]:
            chunk = os.read(slot.events, 1 << 16)
            if not chunk:
                break  # it ended: its death is the shard's loop's to see, not this reading's
            chunks.append(chunk)
    if not chunks:
        return []
    lines, _ = take_lines(slot.buffer, b"".join(chunks))
    return decode_events(lines)[0]
