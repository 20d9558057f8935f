"""A shard supervisor: runs one shard's mini-batches on `processCountPerNode` workers.

The same code runs under `prs run` (one supervisor process per shard) and as the command of
an Indexed Job pod (`prs-runner shard --index $JOB_COMPLETION_INDEX`). It resumes from the
committed results, retries failed tries, replaces crashed or timed-out workers, enforces the
thresholds on what it has seen, reports cumulative progress as JSON lines on stdout, and ends
with the shard's outcome in `_prs/shards/<index>.json` (and the termination message file).
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from prs_runner.execution.cpu_share import pod_process_count
from prs_runner.execution.environment import worker_environment
from prs_runner.execution.memory_kills import read_memory_cgroup, worker_death
from prs_runner.execution.processes import (
    can_fork,
    fork_worker,
    kill_group,
    reap,
    spawn_worker,
    stop_idle,
)
from prs_runner.execution.shard_outcome import Outcome, counts_of, emit
from prs_runner.execution.steals import BALANCE_SECONDS, Balancer
from prs_runner.execution.worker import preload, run_worker
from prs_runner.execution.worker_messages import decode_events, encode_command
from prs_runner.execution.worker_slot import SHALLOWEST, Slot
from prs_runner.output.commit_index import chosen
from prs_runner.output.commit_log import (
    CommitLog,
    life_name,
    read_commits,
    read_life,
    read_life_after,
)
from prs_runner.output.results import FAILED as FAILED_STATUS
from prs_runner.output.results import SUCCEEDED, ErrorInfo, ResultHeader
from prs_runner.output.run_metrics import METRICS_MARK_ENV
from prs_runner.output.run_report_logs import metrics_mark
from prs_runner.planning.plan import MiniBatch
from prs_runner.planning.plan_store import OpeningView, PlanView
from prs_runner.step.spec import progress_timeout
from prs_runner.step.thresholds import Counts, crossed_threshold
from prs_runner.step.uris import uses_object_storage
from prs_runner.storage.download_cache import fetch_side_inputs
from prs_runner.storage.filesystem import Storage, requests_made
from prs_runner.storage.local_staging import LocalStaging

INIT_MAX_TRIES = 3


PROGRESS_INTERVAL = 0.25
PLAN_POLL_SECONDS = 0.005  # while workers start up, the plan is being written
# On an object store each look for the plan (and its openings) is a request or two.
REMOTE_PLAN_POLL_SECONDS = 0.05


class ShardSupervisor:
    """Runs one shard's mini-batches on processCountPerNode workers. Without a plan yet, it
    starts the workers (imports, init()) and waits for the plan to appear at plan_uri."""

    def __init__(self, spec: dict[str, Any], plan_uri: str, index: int, code_root: str,
                 plan: PlanView | None = None) -> None:
        self.spec, self.plan_uri, self.index, self.code_root = spec, plan_uri, index, code_root
        self.output = Storage(self.spec["output"]["uri"])
        self.plan: PlanView | None = None
        self.opening: OpeningView | None = None  # shard 0, while the plan is being cut
        self.opened: set[int] = set()  # ids taken up from openings
        self.balancer: Balancer | None = None  # with more than one shard
        self.total = 0
        self.tries: dict[int, int] = {}
        # Tried, not finished: what the report shows for them if the shard stops first.
        self.unfinished: dict[int, dict[str, Any]] = {}
        self.counts = Counts()
        self.first_error: ErrorInfo | None = None
        self.first_error_raised = False
        self.pending: deque[int] = deque()
        self.slots = [Slot(i) for i in range(self.spec["processCountPerNode"]
                                             or pod_process_count())]
        self.selector = selectors.DefaultSelector()
        self.last_report = 0.0
        self.last_progress = time.monotonic()
        self.stop_reason: tuple[str, str] | None = None
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        # The AWS, Azure and Google clients inside pyarrow are not fork-safe: a worker forked
        # after this process used one dies of SIGSEGV. Steps on object storage exec theirs.
        self.fork = can_fork() and not uses_object_storage(spec)
        self.side_paths: dict[str, str] | None = None
        self.worker_requests = 0  # object-store calls the workers reported
        self.earlier_marks: set[str] | None = None  # metric marks uploaded by earlier runs
        self.staging = LocalStaging(self.output, str(index))
        self.log = CommitLog(self.output, life_name(index, "s"))  # the failures it commits
        self.oom_kills = read_memory_cgroup().oom_kills  # the kernel's, for memory
        if plan is not None:
            self.adopt(plan)

    def adopt(self, plan: PlanView) -> None:
        self.plan, self.total = plan, plan.header.mini_batch_count
        if plan.header.node_count > 1:
            self.balancer = Balancer(self.output, plan.header, self.index,
                                     len(self.slots) * SHALLOWEST)
        self.check_thresholds()  # a share of failures counts once the total is known

    def owned(self) -> list[int]:
        assert self.plan is not None
        if self.balancer is None:
            return list(self.plan.header.shard_ids(self.index))
        self.balancer.refresh()
        return self.balancer.owned()

    def resume(self) -> None:
        self.take_up([mb_id for mb_id in self.owned() if mb_id not in self.opened])

    def take_up(self, ids: list[int]) -> None:
        """Count those of IDS committed by an earlier life; queue the others."""
        wanted = set(ids)
        committed = chosen(read_commits(self.output, wanted.__contains__))
        for mb_id in ids:
            commit = committed.get(mb_id)
            if commit is not None and commit.header.status == SUCCEEDED:
                self.counts += counts_of(commit.header)
            else:
                self.pending.append(mb_id)

    def warm_up(self) -> None:
        """Workers are forked from this process: give it the step's env, then the imports
        every worker needs, once (not once per worker)."""
        for item in self.spec["env"]:
            os.environ[item["name"]] = str(item.get("value", ""))
        preload(self.spec)

    def run(self) -> Outcome:
        if self.fork:
            self.warm_up()
        for slot in self.slots:
            self.start_worker(slot)
        if self.plan is None:
            self.await_plan()
        if self.plan is not None:
            self.resume()
            for slot in self.slots:
                self.dispatch(slot)
        self.last_progress = time.monotonic()
        while self.has_work() and not self.stop_reason:
            if self.init_failed_everywhere():
                break
            self.poll()
            self.check_progress()
            self.balance()
            self.report()
        self.stop_workers()
        self.log.close()
        self.staging.publish()
        return self.outcome()

    def await_plan(self) -> None:
        """Shard 0 runs the openings (planning.plan_store) meanwhile: the plan's first
        mini-batches, published while the rest of the input is being cut."""
        opening = OpeningView(self.plan_uri) if self.index == 0 else None
        every = PLAN_POLL_SECONDS if self.output.local is not None else REMOTE_PLAN_POLL_SECONDS
        while not self.stop_reason and not self.init_failed_everywhere():
            try:
                self.adopt(PlanView(self.plan_uri))
                return
            except FileNotFoundError:
                if opening is not None:
                    self.open(opening)
                self.poll(every)

    def open(self, opening: OpeningView) -> None:
        ids = opening.new_ids()
        if ids:
            self.opening = opening
            self.opened.update(ids)
            self.take_up(ids)
            for slot in self.slots:
                self.dispatch(slot)

    def has_work(self) -> bool:
        """Whether anything is left to run here, once more work is taken from another
        shard where this one would idle."""
        if self.plan is not None and not self.pending and any(
                s.wants() for s in self.slots if not s.dead):
            # The last try before this shard ends is never skipped.
            self.take_work(last=not any(s.queue for s in self.slots))
        return bool(self.pending or any(s.queue for s in self.slots))

    def take_work(self, last: bool) -> None:
        taken = self.balancer.take(last) if self.balancer is not None else []
        if not taken:
            return
        self.pending.extend(taken)
        for slot in self.slots:
            slot.new_work()
            self.dispatch(slot)

    def balance(self, every: float = BALANCE_SECONDS) -> None:
        """Read the steal marks now and then; drop what another shard took from the queue
        (what a worker already holds runs anyway: both records are kept, one counts)."""
        if self.balancer is not None:
            self.pending = self.balancer.prune(self.pending, every)

    def init_failed_everywhere(self) -> bool:
        if not all(s.dead for s in self.slots):
            return False
        error = self.first_error
        # One line (where the script raised it included); the traceback is in firstError.
        detail = error.one_line() if error else "no error reported"
        self.stop_reason = ("InitFailed", f"init() failed in every worker: {detail}")
        return True

    def outcome(self) -> Outcome:
        requests = self.worker_requests + requests_made()
        if not self.stop_reason:
            return Outcome("succeeded", "", "", self.counts, self.first_error, requests,
                           metrics_processes=self.logged_metrics(),
                           processes=len(self.slots))
        reason, message = self.stop_reason
        for slot in self.slots:
            if slot.queue:
                self.catch_up(slot)  # what it committed, but had not said yet, is done
        unfinished = dict(self.unfinished)
        for slot in self.slots:  # running when the shard stopped (the rest only queued)
            if slot.queue:
                unfinished.setdefault(slot.queue[0], {"tries": self.tries.get(slot.queue[0], 0),
                                                      "process": slot.index, "error": ""})
        return Outcome("failed", reason, message, self.counts, self.first_error, requests,
                       unfinished, self.logged_metrics(), len(self.slots))

    def logged_metrics(self) -> list[int]:
        """Its workers whose logs hold Azure Run metrics, of this run or an earlier one over
        the same output: those with a mark (run_report_logs.metrics_mark)."""
        if self.earlier_marks is None:  # on an object store, one listing per shard
            self.earlier_marks = set() if self.output.local is not None else set(
                self.output.list_names(f"_prs/logs/{self.index}"))  # staged: this run's
        return [p for p in range(len(self.slots))
                if f"{p}.metrics" in self.earlier_marks
                or os.path.exists(self.staging.path(metrics_mark(self.index, p)))]

    def start_worker(self, slot: Slot) -> None:
        slot.life = life_name(self.index, str(slot.index))
        env = self.worker_env(slot.index) | {
            "PRS_COMMIT_LIFE": slot.life,
            METRICS_MARK_ENV: self.staging.path(metrics_mark(self.index, slot.index))}
        log = self.staging.path(f"_prs/logs/{self.index}/{slot.index}.log")
        if self.fork:
            slot.pid, slot.commands, slot.events = fork_worker(
                functools.partial(run_worker, self.plan_uri, self.index, slot.index,
                                  self.code_root), env, log)
        else:
            slot.pid, slot.commands, slot.events = spawn_worker(
                self.plan_uri, self.index, slot.index, self.code_root, env, log)
        slot.ready, slot.buffer, slot.queue, slot.ran = False, b"", deque(), set()
        slot.told, slot.read_early = 0, set()
        self.selector.register(slot.events, selectors.EVENT_READ, slot)

    def worker_env(self, process: int) -> dict[str, str]:
        if self.side_paths is None:  # once, before the first worker starts
            self.side_paths = fetch_side_inputs(self.spec["sideInputs"], str(self.index))
        return worker_environment(self.spec, self.index, process, self.code_root,
                                  side_input_paths=self.side_paths,
                                  output_dir=self.staging.output_dir())

    def poll(self, longest: float = PROGRESS_INTERVAL) -> None:
        now = time.monotonic()
        timeout = self.spec["runInvocationTimeout"]
        deadlines = [s.head_started + timeout for s in self.slots if s.running()]
        wait = min([longest, *[d - now for d in deadlines]])
        for key, _ in self.selector.select(max(wait, 0.0)):
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
        slot.buffer += chunk
        *lines, slot.buffer = slot.buffer.split(b"\n")
        for event in decode_events(lines):
            self.handle_event(slot, event)

    def check_progress(self) -> None:
        """NoProgress when no mini-batch finished in this shard for progressUpdateTimeout."""
        limit = progress_timeout(self.spec)
        stalled = time.monotonic() - self.last_progress
        if stalled < limit or self.stop_reason:
            return
        for slot in self.slots:
            if slot.running():
                self.catch_up(slot)
        stalled = time.monotonic() - self.last_progress
        if stalled < limit:
            return
        now = time.monotonic()
        doing = "; ".join(f"process {s.index}: {s.doing(now)}" for s in self.slots)
        self.stop_reason = ("NoProgress", f"no mini-batch finished in shard {self.index} for "
                            f"{stalled:.0f} s (progressUpdateTimeout={limit}); {doing}")

    def handle_event(self, slot: Slot, event: dict[str, Any]) -> None:
        if "done" in event or "error" in event or "ran" in event:
            self.last_progress = time.monotonic()
        if "ran" in event:  # its commit follows (object stores): the next one runs now
            slot.ran.add(event["ran"])
            slot.head_started = time.monotonic()
            slot.finished(1, slot.head_started)
        elif "done" in event:
            now = time.monotonic()
            fresh = event["done"]
            if slot.read_early:  # some were read in its log already (catch_up)
                fresh = [done for done in fresh if done["done"] not in slot.read_early]
                slot.read_early.difference_update(done["done"] for done in event["done"])
            unsaid = sum(done["done"] not in slot.ran for done in fresh)
            if unsaid:
                slot.head_started = now
                slot.finished(unsaid, now)
            self.worker_requests += int(event.get("requests", 0))
            slot.told += len(fresh)
            for done in fresh:
                slot.ran.discard(slot.queue.popleft())
                self.finish(done["done"], done)
        elif "commit_failed" in event:
            mb_id = slot.queue.popleft()
            self.tries[mb_id] -= 1  # not the script's try: it runs again after a fix
            self.pending.appendleft(mb_id)
            if not self.stop_reason:
                self.stop_reason = ("OutputUnwritable", event["commit_failed"])
        elif "error" in event:
            mb_id = slot.queue.popleft()
            now = time.monotonic()
            took = event.get("seconds")  # the worker's own measure (its 'done's before may
            # have come with this message, held while it ran)
            self.fail_try(mb_id, event["error"], slot.index,
                          now - slot.head_started if took is None else float(took))
            slot.head_started = now
        elif "ready" in event:
            slot.ready = True
        elif "init_failed" in event:
            self.retire(slot)
            self.fail_init(slot, event["init_failed"], lasting=event.get("lasting", False))
            return
        self.dispatch(slot)

    def dispatch(self, slot: Slot) -> None:
        if self.balancer is not None and slot.wants():
            self.balance(self.balancer.fresh)  # not what another shard has just taken
        wanted = min(slot.wants(), len(self.pending))
        if not wanted:
            return
        now = time.monotonic()
        if not slot.running():
            slot.head_started = now
        slot.sent(now)
        commands = []
        for _ in range(wanted):
            mb_id = self.pending.popleft()
            self.tries[mb_id] = tries = self.tries.get(mb_id, 0) + 1
            slot.queue.append(mb_id)
            commands.append(encode_command(mb_id, tries))
        # A dead worker's pipe is broken; its EOF returns these mini-batches.
        with contextlib.suppress(BrokenPipeError):
            os.write(slot.commands, b"".join(commands))

    def finish(self, mb_id: int, event: dict[str, Any]) -> None:
        self.unfinished.pop(mb_id, None)
        self.counts += Counts(1, 0, event["succeeded"], event["failed"], event["rows"])
        if event.get("item_error"):
            self.remember_error(event["item_error"], mb_id, raised=False)
        if event["failed"]:
            self.check_thresholds()

    def fail_try(self, mb_id: int, error: dict[str, Any], process: int,
                 seconds: float) -> None:
        """A try of MB_ID failed in worker PROCESS after SECONDS; the last one is committed
        as a failure, with that worker and time (the report shows where it ran)."""
        self.remember_error(error, mb_id)
        if self.tries[mb_id] < self.spec["runMaxTry"]:
            self.pending.appendleft(mb_id)
            self.unfinished[mb_id] = {"tries": self.tries[mb_id], "process": process,
                                      "error": f"{error['type']}: {error['message']}"}
            return
        self.unfinished.pop(mb_id, None)
        items = self.items(mb_id)
        header = ResultHeader(
            id=mb_id, shard=self.index, process=process, tries=self.tries[mb_id], items=items,
            succeeded=0, failed=items, seconds=round(seconds, 6), status=FAILED_STATUS,
            error={"type": error["type"], "message": error["message"]},
            started=round(time.time() - seconds, 6),  # the last try's, on the report's timeline
        )
        self.log.add(header, b"")
        self.log.flush()
        self.counts += Counts(0, 1, 0, items, 0)
        self.check_thresholds()
        self.report(force=True)

    def fail_init(self, slot: Slot, error: dict[str, Any], lasting: bool = False) -> None:
        """Called once the slot is retired: start it again, or give it up (at once when the
        error is LASTING: a fresh process would raise it again)."""
        self.remember_error(error, None)
        slot.init_failures += 1
        if slot.init_failures < INIT_MAX_TRIES and not lasting:
            self.start_worker(slot)
        else:
            slot.dead = True

    def catch_up(self, slot: Slot) -> None:
        """A local worker holds the 'done's of its last quick mini-batches while its next
        run() runs (execution.committer): read what it committed beyond what it said, so
        that the run() it is in now is timed from its start, and named when the shard
        makes no progress. Their 'done's, when they come, are not counted again."""
        if self.output.local is None:  # there a worker says 'ran' at once
            return
        committed = read_life_after(self.output, slot.life, slot.told)
        ended = None
        for commit in committed:
            header = commit.header
            if not slot.queue or slot.queue[0] != header.id:
                break  # not the next one it was sent: the 'done's will say
            slot.queue.popleft()
            slot.told += 1
            slot.read_early.add(header.id)
            self.finish(header.id, vars(header) | {"item_error": header.error})  # as said
            ended = max(ended or 0.0, ended_at(header))
        if ended:
            moment = monotonic_of(ended)
            slot.head_started = max(slot.head_started, moment)
            self.last_progress = max(self.last_progress, moment)  # another may be later

    def lose_worker(self, slot: Slot, error: dict[str, Any]) -> None:
        """A worker died or was killed. Its log says which of its mini-batches are committed:
        those are done; those it ran to the end but had not committed, and those it had not
        started, go back to the queue; the one it was running failed a try."""
        queue, ran, was_ready = deque(slot.queue), set(slot.ran), slot.ready
        self.retire(slot)
        if not was_ready:
            self.fail_init(slot, {**error, "traceback": ""})
            return
        committed = {c.header.id: c.header for c in read_life(self.output, slot.life)}
        back, running, started = [], None, slot.head_started
        for mb_id in queue:
            if mb_id in committed:
                self.finish(mb_id, vars(committed[mb_id]))
                if running is None:  # said or not, the one running began after it
                    started = max(started, monotonic_of(ended_at(committed[mb_id])))
            elif mb_id in ran or running is not None:
                self.tries[mb_id] -= 1
                back.append(mb_id)
            else:
                running = mb_id
        self.pending.extendleft(reversed(back))
        if running is not None:
            self.fail_try(running, {**error, "message": f"{error['message']} "
                                    f"(mini-batch {running}, try {self.tries[running]})"},
                          slot.index, time.monotonic() - started)
        self.start_worker(slot)
        self.dispatch(slot)

    def retire(self, slot: Slot) -> None:
        self.selector.unregister(slot.events)
        for fd in (slot.events, slot.commands):
            os.close(fd)
        kill_group(slot.pid)
        reap(slot.pid)
        # Gone: its descriptors' numbers and its pid may be another's from now on.
        slot.pid, slot.commands, slot.events = 0, -1, -1
        slot.queue, slot.ran, slot.ready = deque(), set(), False
        slot.told, slot.read_early = 0, set()

    def remember_error(self, error: dict[str, Any], mb_id: int | None,
                       raised: bool = True) -> None:
        """The first error, for messages and the report; one that was RAISED (an exception,
        a dead worker) wins over an earlier one about items (skipped rows, fewer results:
        normal for scripts that return one row per partition)."""
        if self.first_error is not None and (self.first_error_raised or not raised):
            return
        items = self.mini_batch(mb_id).items if mb_id is not None else ()
        self.first_error = ErrorInfo(
            error["type"], error["message"], error.get("traceback", ""), mb_id, items[:5])
        self.first_error_raised = raised

    def items(self, mb_id: int) -> int:
        return self.mini_batch(mb_id).item_count

    def mini_batch(self, mb_id: int) -> MiniBatch:
        view = self.plan if self.plan is not None else self.opening
        assert view is not None
        return view[mb_id]

    def check_thresholds(self) -> None:
        why = crossed_threshold(self.counts, self.spec, self.total)
        if why and not self.stop_reason:
            first = f"; first error: {self.first_error.one_line()}" if self.first_error else ""
            self.stop_reason = ("ErrorThresholdExceeded", why + first)

    def stop_workers(self) -> None:
        """Those with work left (a stop, or its last try) are killed; the others stop."""
        for slot in self.slots:
            if not (slot.dead or slot.pid == 0) and (self.stop_reason or slot.queue):
                self.retire(slot)
        stop_idle(self.slots, self.spec["runInvocationTimeout"], f"shard {self.index}")

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_report >= PROGRESS_INTERVAL:
            self.last_report = now
            report = self.outcome().to_dict(self.index) | {"final": False}
            emit(report)
            for listener in self.listeners:
                listener(report)


def ended_at(header: ResultHeader) -> float:
    """When a committed try ended, in Unix seconds (0: a record without its start)."""
    return 0.0 if header.started is None else header.started + header.seconds


def monotonic_of(moment: float) -> float:
    """MOMENT (Unix seconds, in the past) on time.monotonic()'s clock."""
    return time.monotonic() - max(time.time() - moment, 0.0)
