"""Progress of `prs run`: a live tqdm bar on a terminal, a plain line every few seconds otherwise.

tqdm draws the bar because it already handles what a hand-drawn one gets wrong: the terminal's
width (and its changes), a redraw that never outpaces the terminal, and the final line left in
place. It is small and pure Python; rich would bring a rendering stack for one line. Logs and
pipes get a plain line instead: a bar redrawn with carriage returns is noise in a log file.
"""

from __future__ import annotations

import io
import os
import time
from typing import TYPE_CHECKING, NoReturn, TextIO

from prs_runner.step.thresholds import Counts

if TYPE_CHECKING:
    from tqdm import tqdm

PLAIN_INTERVAL = 5.0
BAR_INTERVAL = 0.2
FALLBACK_COLUMNS = 100
# unit "" makes tqdm's rate read "12.5/s": the unit is already in the text before it.
# On a narrow terminal tqdm cuts the end of the line: the rate goes first, the ETA stays.
BAR_FORMAT = ("{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} mini-batches{postfix}  "
              "ETA {remaining}  {rate_fmt}")


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def counted(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def done_and_failed(counts: Counts) -> str:
    """Items done and failures so far: what the bar's numbers do not say (short, so that an
    80-column terminal still shows the rate and the ETA)."""
    items = counted(counts.items_succeeded + counts.items_failed, "item", "items")
    if not counts.mini_batches_failed and not counts.items_failed:
        return f"{items}, no failures"
    return (f"{items}, {counts.mini_batches_failed:,} failed "
            f"({counted(counts.items_failed, 'item', 'items')})")


def progress_line(counts: Counts, total: int, elapsed: float, resumed: int) -> str:
    """The plain line: mini-batches done, items, failures, this run's rate and the ETA."""
    done = counts.mini_batches_done
    percent = 100 * done // total if total else 100
    # Never below 0: the shards' resumed counts arrive one report at a time, and a shard
    # uncounts what it finds another ran too.
    rate = max(done - resumed, 0) / elapsed if elapsed > 0 else 0.0
    eta = format_duration((total - done) / rate) if rate > 0 else "?"
    return (f"{done:,}/{total:,} mini-batches ({percent}%)  {done_and_failed(counts)}  "
            f"{rate:.1f}/s  ETA {eta}")


def terminal_columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, io.UnsupportedOperation):  # not a real terminal
        return 0


class Progress:
    def __init__(self, stream: TextIO, total: int, resumed: int) -> None:
        self.stream, self.total, self.resumed = stream, total, resumed
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self.last = self.started
        self.counts = Counts()
        self.bar: tqdm[NoReturn] | None = None

    def live_bar(self) -> tqdm[NoReturn]:
        """The bar, made at the first update: `total` and `resumed` are known by then."""
        if self.bar is None:
            # Imported here: a run without a terminal (a pipe, a log, a pod) never draws a
            # bar, and importing tqdm costs `prs run` some 30 ms before it can list its input.
            from tqdm import tqdm

            # A terminal that reports no width (some CI pseudo-terminals) would get an empty
            # bar from tqdm: it gets a fixed width instead.
            sized = terminal_columns(self.stream) > 0
            self.bar = tqdm(total=self.total, initial=self.resumed, file=self.stream,
                            bar_format=BAR_FORMAT, dynamic_ncols=sized,
                            ncols=None if sized else FALLBACK_COLUMNS,
                            mininterval=BAR_INTERVAL, unit="", leave=True)
        return self.bar

    def update(self, counts: Counts) -> None:
        self.counts = counts
        if self.tty:
            bar = self.live_bar()
            bar.set_postfix_str(done_and_failed(counts), refresh=False)
            bar.update(counts.mini_batches_done - bar.n)  # redraws at most every BAR_INTERVAL
            return
        now = time.monotonic()
        if now - self.last < PLAIN_INTERVAL:
            return
        self.last = now
        self.stream.write(progress_line(counts, self.total, now - self.started, self.resumed)
                          + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            bar = self.live_bar()
            bar.set_postfix_str(done_and_failed(self.counts), refresh=False)
            bar.update(self.counts.mini_batches_done - bar.n)
            bar.close()
