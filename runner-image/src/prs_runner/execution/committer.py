"""A worker's commits, and its messages to the supervisor in the order of its commands.

Locally a record is appended to the worker's commit log at once; its 'done' is held while
the worker has its next command already, and leaves with the others in one line: a run of
small mini-batches then costs the worker one write and the supervisor one wake-up per group,
not per mini-batch. At most HOLD_MOST are held, only while the first of them began less
than HOLD_SECONDS ago, and none that failed items (the thresholds count those). A worker
has no thread of its own to say them later (a script may join every thread it finds), so
while its next run() runs they wait; a supervisor about to time that run() out, or to stop
for want of progress, first reads what the worker committed (shard.catch_up). A worker that
dies holding some loses nothing either: the supervisor reads its commit log then too.

On an object store records are gathered into parts (commit_log): a part is written once the
worker has waited a moment for its next command (command_queue.IDLE_GRACE_SECONDS: its
queue ran dry), or its oldest record waited FLUSH_SECONDS, or it holds FLUSH_BYTES;
meanwhile run() goes on with the next mini-batch. Each record's mini-batch is said 'ran'
when run() returns and 'done' once its part is written, so a supervisor whose worker dies
knows which mini-batches ran to the end but were not committed: they run again without
counting as a failed try.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prs_runner.output.commit_log import CommitLog
from prs_runner.output.results import ResultHeader

FLUSH_SECONDS = 1.0
FLUSH_BYTES = 8 << 20
HOLD_MOST = 16
HOLD_SECONDS = 0.1

Send = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Ran:
    """A mini-batch run() finished with: its record, to be committed, and its 'done'."""

    header: ResultHeader
    payload: bytes
    done: dict[str, Any]


class CommitFailed(Exception):
    """The result could not be written (a full disk, a read-only output): not the script's
    failure, and no retry can succeed, so the shard stops."""

    def __init__(self, mini_batch: int, error: OSError) -> None:
        self.mb_id = mini_batch
        where = f" to {error.filename}" if error.filename else ""
        super().__init__(f"cannot commit the result of mini-batch {mini_batch}{where}: "
                         f"{error.strerror or error}; free space or fix the output, then run "
                         "again to resume")


class Committer:
    """Commits records into LOG and sends every message through SEND, in order. COUNTED is
    added to each 'done' when it leaves (the object-store calls made since the last one);
    QUEUED says whether the worker's next command is there already (locally a 'done' is
    held only then)."""

    def __init__(self, log: CommitLog, send: Send, counted: Callable[[], dict[str, Any]],
                 queued: Callable[[], bool], hold_seconds: float = HOLD_SECONDS) -> None:
        self.log, self.send, self.counted = log, send, counted
        self.grouped = log.output.local is None
        self.pending: list[Ran | dict[str, Any]] = []
        self.since = 0.0  # when the oldest pending record was held
        self.urgent = False
        self.closed = False
        self.dones = None if self.grouped else HeldDones(send, counted, queued, hold_seconds)
        self.ready = threading.Condition()
        self.thread: threading.Thread | None = None
        if self.grouped:
            self.thread = threading.Thread(target=self.write_parts, daemon=True,
                                           name="prs-commit")
            self.thread.start()

    def commit(self, ran: Ran) -> None:
        if self.grouped:
            self.send({"ran": ran.header.id})
            self.post(ran)
            return
        assert self.dones is not None
        failure = self.commit_all([ran])
        if failure is None:
            self.dones.hold(ran.done, ran.header.seconds)
        else:
            self.dones.say_all(failure)

    def tell(self, message: dict[str, Any]) -> None:
        """A message that is not a commit (a failed try), sent after the commits before it."""
        if self.dones is None:
            self.post(message)
        else:
            self.dones.say_all(message)

    def idle(self) -> None:
        """Nothing is queued: write and say what is held now, rather than wait for more."""
        if self.dones is not None:
            self.dones.say_all()
        with self.ready:
            self.urgent = True
            self.ready.notify()

    def close(self) -> None:
        if self.dones is not None:
            self.dones.say_all()
        if self.thread is not None:
            with self.ready:
                self.closed = True
                self.ready.notify()
            self.thread.join()
        self.log.close()

    def post(self, item: Ran | dict[str, Any]) -> None:
        with self.ready:
            if not any(isinstance(held, Ran) for held in self.pending):
                self.since = time.monotonic()
            self.pending.append(item)
            self.ready.notify()

    def due(self) -> bool:
        if not self.pending:
            return False
        return (self.urgent or self.closed or self.log.held_bytes >= FLUSH_BYTES
                or time.monotonic() - self.since >= FLUSH_SECONDS)

    def write_parts(self) -> None:
        while True:
            with self.ready:
                self.ready.wait_for(lambda: self.due() or (self.closed and not self.pending),
                                    timeout=FLUSH_SECONDS)
                if not self.due():
                    if self.closed:
                        return
                    continue
                batch, self.pending, self.urgent = self.pending, [], False
            self.write_part(batch)

    def write_part(self, batch: list[Ran | dict[str, Any]]) -> None:
        failure = self.commit_all([item for item in batch if isinstance(item, Ran)])
        if failure is not None:
            self.send(failure)  # the shard stops: what else this part held runs again
            return
        done: list[dict[str, Any]] = []
        for item in batch:
            if isinstance(item, Ran):
                done.append(item.done)
                continue
            if done:
                self.send({"done": done} | self.counted())
                done = []
            self.send(item)
        if done:
            self.send({"done": done} | self.counted())

    def commit_all(self, runs: list[Ran]) -> dict[str, Any] | None:
        """Commit RUNS (one part on an object store); None, or the 'commit_failed' message."""
        try:
            for ran in runs:
                self.log.add(ran.header, ran.payload)
            self.log.flush()
        except OSError as error:
            self.log.held, self.log.held_bytes = [], 0
            failed = CommitFailed(runs[0].header.id, error)
            return {"commit_failed": str(failed), "id": failed.mb_id}
        return None


class HeldDones:
    """A local worker's 'done's, held and said in groups (see the module docstring)."""

    def __init__(self, send: Send, counted: Callable[[], dict[str, Any]],
                 queued: Callable[[], bool], hold_seconds: float) -> None:
        self.send, self.counted, self.queued = send, counted, queued
        self.hold_seconds = hold_seconds
        self.held: list[dict[str, Any]] = []
        self.since = 0.0  # when the first held one's run() began

    def hold(self, done: dict[str, Any], seconds: float) -> None:
        """DONE, of a mini-batch whose run() took SECONDS."""
        if not self.held:
            self.since = time.monotonic() - seconds
        self.held.append(done)
        if (len(self.held) >= HOLD_MOST or done["failed"] or not self.queued()
                or time.monotonic() - self.since >= self.hold_seconds):
            self.say_all()

    def say_all(self, then: dict[str, Any] | None = None) -> None:
        """Say what is held, then the message THEN, if any."""
        if self.held:
            done, self.held = self.held, []
            self.send({"done": done} | self.counted())
        if then is not None:
            self.send(then)
