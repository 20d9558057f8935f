"""Progress of `prs run`: a live bar on a terminal, a plain line every few seconds otherwise."""

from __future__ import annotations

import time
from typing import TextIO

from prs_runner.step.thresholds import Counts

PLAIN_INTERVAL = 5.0
BAR_INTERVAL = 0.2


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_line(counts: Counts, total: int, elapsed: float, resumed: int, width: int = 24) -> str:
    done = counts.mini_batches_done
    fraction = done / total if total else 1.0
    filled = int(width * fraction)
    rate = (done - resumed) / elapsed if elapsed > 0 else 0.0
    eta = format_duration((total - done) / rate) if rate > 0 else "?"
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} mini-batches"
        f"  {counts.items_failed} failed items  {rate:.1f}/s  ETA {eta}"
    )


class Progress:
    def __init__(self, stream: TextIO, total: int, resumed: int) -> None:
        self.stream, self.total, self.resumed = stream, total, resumed
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self.last = 0.0 if self.tty else self.started
        self.counts = Counts()

    def update(self, counts: Counts) -> None:
        self.counts = counts
        now = time.monotonic()
        if now - self.last < (BAR_INTERVAL if self.tty else PLAIN_INTERVAL):
            return
        self.last = now
        line = progress_line(counts, self.total, now - self.started, self.resumed)
        self.stream.write(f"\r{line}" if self.tty else f"{line}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            line = progress_line(self.counts, self.total, time.monotonic() - self.started,
                                 self.resumed)
            self.stream.write(f"\r{line}\n")
            self.stream.flush()
