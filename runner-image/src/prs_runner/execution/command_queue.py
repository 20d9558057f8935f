"""A worker's side of its pipe from the supervisor: the commands, one at a time, and whether
the next one is there already (a worker holds its 'done's only while it is, execution.committer).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from prs_runner.execution.worker_messages import decode_command


def pipe_lines(fd: int) -> Iterator[bytes]:
    buffer = bytearray()
    while chunk := os.read(fd, 65536):
        yield from command_lines(buffer, chunk)
    if buffer:
        yield bytes(buffer)


LONGEST_COMMAND = 4096  # bytes; a shard's are some 30


def command_lines(buffer: bytearray, chunk: bytes) -> list[bytes]:
    """The whole lines (but empty ones) of BUFFER, what was left of the last read, and
    CHUNK, the next; what is left stays in BUFFER. What is left longer than any command is
    taken as a line too (stray: a script wrote it), so that a long line is never split
    again at every read."""
    if not buffer and chunk.endswith(b"\n"):  # the usual read (the path below agrees)
        return [line for line in chunk.split(b"\n") if line]
    buffer += chunk
    lines: list[bytearray] = []
    if b"\n" in chunk:
        *lines, rest = buffer.split(b"\n")
        buffer[:] = rest
    if len(buffer) > LONGEST_COMMAND:
        lines.append(buffer[:])
        buffer.clear()
    return [bytes(line) for line in lines if line]


PREFETCH_AHEAD = 2  # mini-batches downloaded ahead of the running one (the cache's bound)
IDLE_GRACE_SECONDS = 0.05  # waited for a command before held commits are written anyway


class CommandQueue:
    """The supervisor's commands, one at a time. THREADED (input or output on an object
    store), a reader thread takes them off the pipe as they come, so that the mini-batches
    queued behind the running one start downloading at once (PREFETCH), and ON_IDLE is
    called when the worker has waited IDLE_GRACE for a command (held commits go
    out then)."""

    def __init__(self, stream: Any, prefetch: Callable[[int], None] | None, threaded: bool,
                 on_idle: Callable[[], None], idle_grace: float = IDLE_GRACE_SECONDS) -> None:
        self.stream, self.prefetch, self.threaded = stream, prefetch, threaded
        self.on_idle, self.idle_grace = on_idle, idle_grace
        self.items: deque[dict[str, Any] | None] = deque()
        self.lines: deque[bytes] = deque()  # not threaded: whole lines read, not yet taken
        self.rest = bytearray()  # and the start of the next one
        self.ready = threading.Condition()
        self.busy = False
        if threaded:
            threading.Thread(target=self.read_all, daemon=True, name="prs-commands").start()

    def has_next(self) -> bool:
        """Whether the next command is there already (next() returns it without waiting)."""
        return bool(self.items) if self.threaded else bool(self.lines)

    def read_lines(self) -> None:
        """Wait for a whole line or the pipe's end (a last line without its newline too)."""
        while not self.lines:
            chunk = os.read(self.stream.fileno(), 65536)
            if not chunk:
                if self.rest:
                    self.lines.append(bytes(self.rest))
                    self.rest.clear()
                return
            self.lines.extend(command_lines(self.rest, chunk))

    def read_all(self) -> None:
        # Raw reads on the descriptor: a buffered reader would hold its lock while blocked
        # here, and the main thread's close of the stream at exit would wait for it forever.
        for line in pipe_lines(self.stream.fileno()):
            command = decode_command(line)
            with self.ready:
                self.items.append(command)
                waiting = self.busy and len(self.items) <= PREFETCH_AHEAD
                self.ready.notify()
            if waiting and "run" in command and self.prefetch is not None:
                self.prefetch(command["run"])
        with self.ready:
            self.items.append(None)
            self.ready.notify()

    def next(self) -> dict[str, Any] | None:
        if not self.threaded:
            if not self.lines:
                self.on_idle()  # about to wait: what is held goes out first
                self.read_lines()
            return decode_command(self.lines.popleft()) if self.lines else None
        with self.ready:
            self.busy = False
            # The next command mostly comes a round trip after the last 'ran': held commits
            # wait for it and go out with the next part, rather than cost a part (two PUTs)
            # each. Only a worker left waiting longer (the shard's end, a starved queue)
            # writes them now.
            if not self.ready.wait_for(lambda: bool(self.items), timeout=self.idle_grace):
                self.on_idle()
            self.ready.wait_for(lambda: bool(self.items))
            command = self.items.popleft()
            self.busy = True
            following = list(self.items)[:PREFETCH_AHEAD]
        if self.prefetch is not None:
            for queued in following:
                if queued and "run" in queued:
                    self.prefetch(queued["run"])
        return command
