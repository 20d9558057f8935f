"""A worker's commits, and its messages to the supervisor in the order of its commands.

Locally a record is appended to the worker's commit log and its 'done' leaves at once. On
an object store records are gathered into parts (commit_log): a part is written once the
worker has waited a moment for its next command (worker.IDLE_GRACE_SECONDS: its queue ran
dry), or its oldest record waited FLUSH_SECONDS, or it holds FLUSH_BYTES; meanwhile run()
goes on with the next mini-batch. Each record's mini-batch is
said 'ran' when run() returns and 'done' once its part is written, so a supervisor whose
worker dies knows which mini-batches ran to the end but were not committed: they run
again without counting as a failed try.
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
    added to each 'done' when it leaves (the object-store calls made since the last one)."""

    def __init__(self, log: CommitLog, send: Send, counted: Callable[[], dict[str, Any]]) -> None:
        self.log, self.send, self.counted = log, send, counted
        self.grouped = log.output.local is None
        self.pending: list[Ran | dict[str, Any]] = []
        self.since = 0.0  # when the oldest pending record was held
        self.urgent = False
        self.closed = False
        self.ready = threading.Condition()
        self.thread: threading.Thread | None = None
        if self.grouped:
            self.thread = threading.Thread(target=self.write_parts, daemon=True,
                                           name="prs-commit")
            self.thread.start()

    def commit(self, ran: Ran) -> None:
        if not self.grouped:
            self.send(self.committed([ran]))
            return
        self.send({"ran": ran.header.id})
        self.post(ran)

    def tell(self, message: dict[str, Any]) -> None:
        """A message that is not a commit (a failed try), sent after the commits before it."""
        if self.grouped:
            self.post(message)
        else:
            self.send(message)

    def idle(self) -> None:
        """Nothing is queued: write what is held now, rather than wait for more."""
        with self.ready:
            self.urgent = True
            self.ready.notify()

    def close(self) -> None:
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

    def committed(self, runs: list[Ran]) -> dict[str, Any]:
        return self.commit_all(runs) or {"done": [ran.done for ran in runs]} | self.counted()

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
