"""Where a failed mini-batch's traceback is in its worker's log. Pure.

A worker logs each failed try as `<time> ERROR prs.worker [shard S process P] run() failed
on mini-batch N`, then the traceback, in `_prs/logs/<shard>/<process>.log` (the shard and
process that ran it, as the report's row says). The log is appended to by every life of that
worker and every run over the same output, so the LAST such record of a mini-batch is the
one its committed failure comes from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

FAILED_TRY = re.compile(r"run\(\) failed on mini-batch (\d+)\s*$")
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")  # logging's asctime
EXCERPT_LINES = 40  # of a traceback, at most
EXCERPT_LINE_CHARS = 500


@dataclass(frozen=True)
class LogExcerpt:
    line: int  # of the failure's first line in the log, from 1
    text: str  # that line and the traceback under it


def log_path(shard: int, process: int) -> str:
    """The worker's log, relative to the output."""
    return f"_prs/logs/{shard}/{process}.log"


def metrics_mark(shard: int, process: int) -> str:
    """An empty file beside the worker's log once it has logged a metric through Azure's
    Run: its shard names those workers in its outcome (`metricsLogged`), and the merge reads
    only their logs for the report's metrics."""
    return f"_prs/logs/{shard}/{process}.metrics"


def failed_tries(lines: Iterable[str], wanted: set[int]) -> dict[int, LogExcerpt]:
    """The last logged failure of each WANTED mini-batch in a log's LINES, with its
    traceback (the lines up to the next log record, at most EXCERPT_LINES)."""
    found: dict[int, LogExcerpt] = {}
    current: tuple[int, int, list[str]] | None = None  # mini-batch, line, lines so far
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\n")
        if RECORD_START.match(text):
            if current is not None:
                found[current[0]] = LogExcerpt(current[1], "\n".join(current[2]))
                current = None
            match = FAILED_TRY.search(text)
            if match and int(match.group(1)) in wanted:
                current = (int(match.group(1)), number, [text[:EXCERPT_LINE_CHARS]])
        elif current is not None and len(current[2]) < EXCERPT_LINES:
            current[2].append(text[:EXCERPT_LINE_CHARS])
    if current is not None:
        found[current[0]] = LogExcerpt(current[1], "\n".join(current[2]))
    return found
