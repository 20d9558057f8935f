"""A shard's stop signals, deferred while it reads what its workers said.

The stop handler (SIGTERM, Ctrl-C) reads the messages its workers left unread, to say what
each was in when they stopped. Python runs a handler between two steps of the main thread,
wherever it is: one that came halfway through the shard's own reading of those messages
would find half of them taken and the rest not fitting (the report then called the
mini-batch a worker was in 'not run'). So a signal that comes while such a reading runs is
handled as soon as it ends. (Masking the signal would not do: another thread of the process
can take it, and Python runs the handler all the same.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from types import FrameType

Handler = Callable[[int, FrameType | None], None]


class DeferredStops:
    def __init__(self) -> None:
        self.depth = 0  # readings under way (one may call another)
        self.pending: tuple[Handler, int] | None = None

    def handler(self, handle: Handler) -> Handler:
        """HANDLE as a signal handler, run at once, or at the end of a reading under way."""
        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self.depth:
                self.pending = self.pending or (handle, signum)
                return
            handle(signum, frame)
        return on_signal

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if not self.depth and self.pending is not None:
                handle, signum = self.pending
                self.pending = None
                handle(signum, None)
