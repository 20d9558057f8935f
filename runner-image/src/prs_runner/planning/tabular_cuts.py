"""Cutting tabular files into mini-batches. Pure: functions over bytes, row-group sizes and
key values; the file reading around them is in tabular_scan.

A CSV record ends at a newline with an even number of quote characters before it (counted
from the start of the file), so a quoted field that holds a newline is never cut. That holds
only while every quote that opens starts a field (after the delimiter, a line end, or the
quote before it: two in a row inside a quoted field are one quote). A quote inside an
unquoted field (`5" disk`) is text to pyarrow but would flip the count: the scan finds the
first such quote, and the planner refuses the file there rather than cut it where pyarrow
does not. JSON Lines records end at every newline (JSON strings cannot hold a raw newline).
Blank lines are valid cut points but not records (pyarrow skips them).

The one pass over every byte is compiled (record_scan.c): in numpy it took five passes and
more CPU time than the workers' reading of the same file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from prs_runner.planning import record_scan

CARRIAGE_RETURN = ord("\r")
Ints = npt.NDArray[np.int64]
Buffer = bytes | memoryview


@dataclass(frozen=True)
class ByteRange:
    """Records in [start, end) of one file: `records` of them, blank lines not counted."""

    start: int
    end: int
    records: int


@dataclass(frozen=True)
class RowGroupRun:
    """Consecutive row groups of one Parquet file read as one mini-batch."""

    row_groups: tuple[int, ...]
    rows: int
    bytes: int


def record_ends(block: Buffer, in_quotes: bool, quoted: bool, byte_before: int = -1,
                field_start: int = -1) -> tuple[Ints, bool, int, int]:
    """Offsets (within BLOCK) just past each newline that ends a record; whether the block
    ends inside a quoted field; and, CSV only (QUOTED), the offsets of its first carriage
    return outside quotes that no newline follows (its last byte is not judged: what follows
    it is in the next block) and of its first quote out of place (see the module's
    docstring), -1 for none. IN_QUOTES: the block starts inside a quoted field; BYTE_BEFORE:
    the previous block's last byte (-1: the file starts here); FIELD_START: where the file's
    first field starts when in this block (0, or 3 past a byte order mark; else -1), which a
    quote may start whatever is before it. One pass in C (record_scan)."""
    ends, still_inside, lone, stray = record_scan.scan(block, quoted, in_quotes, byte_before,
                                                        field_start)
    return np.frombuffer(ends, dtype=np.int64), still_inside, lone, stray


def count_records(block: Buffer, ends: Ints, previous_end: int, offset: int,
                  byte_before: int = -1, spaces_before: bool | None = None) -> Ints:
    """Cumulative record count at each end (absolute offsets `ends`), leaving blank lines
    out. `previous_end`: absolute end of the record before the first one; `offset`: the
    block's absolute start; `byte_before`: the previous block's last byte (-1: none), which
    is the CR of a blank CRLF line whose LF opens this block. SPACES_BEFORE (JSON Lines):
    a line of spaces, tabs and carriage returns is blank too (pyarrow skips it), and
    whether what the first line has before the block is only those (None: CSV, where such
    a line is a record of spaces)."""
    lengths = np.diff(ends, prepend=previous_end)
    blank = lengths == 1
    two_bytes = lengths == 2
    maybe_crlf = np.flatnonzero(two_bytes & (ends - offset >= 2))
    if len(maybe_crlf):
        data = np.frombuffer(block, dtype=np.uint8)
        blank[maybe_crlf] = data[ends[maybe_crlf] - offset - 2] == CARRIAGE_RETURN
    if byte_before == CARRIAGE_RETURN:
        blank |= two_bytes & (ends - offset == 1)
    if spaces_before is not None:
        blank |= space_lines(block, ends, previous_end, offset, spaces_before)
    return np.cumsum(~blank, dtype=np.int64)


SPACES = b" \t\r"  # what a blank JSON line may hold (JSON's whitespace, less the newline)
SPACE_CODES = np.frombuffer(SPACES, dtype=np.uint8)


def space_lines(block: Buffer, ends: Ints, previous_end: int, offset: int,
                spaces_before: bool) -> npt.NDArray[np.bool_]:
    """Per line ending at ENDS, whether it holds only SPACES before its newline; the first
    one's bytes before BLOCK are judged by SPACES_BEFORE. Only lines that start with one of
    them are looked at (JSON Lines records start with their value), all at once: the
    non-space bytes before each byte of the block, counted once."""
    spaces = np.zeros(len(ends), dtype=bool)
    if not len(ends):
        return spaces
    data = np.frombuffer(block, dtype=np.uint8)
    starts = np.concatenate(([previous_end], ends[:-1])) - offset
    first = data[np.maximum(starts, 0)]
    # which lines to look at: a wider look gives the same answer, only slower
    maybe = np.isin(first, SPACE_CODES)  # pragma: no mutate: wider
    if starts[0] < 0:  # pragma: no mutate: at 0, SPACES_BEFORE is true (a line just began)
        maybe[0] = spaces_before
    lines = np.flatnonzero(maybe)
    if not len(lines):
        return spaces
    before = np.zeros(len(data) + 1, dtype=np.int64)  # pragma: no mutate: float counts alike
    np.cumsum(~np.isin(data, SPACE_CODES), out=before[1:])
    # a line's bytes in BLOCK, its newline left out
    low, high = np.maximum(starts[lines], 0), ends[lines] - offset - 1
    spaces[lines] = before[high] == before[low]
    return spaces


@dataclass
class RangeCutter:
    """Cuts one file's records into ranges of about `target_bytes` bytes (the cut is the
    first record end at or past start + target) or exactly `target_rows` records. Fed the
    record ends block by block, so a large file never has to be held in memory."""

    start: int
    target_bytes: int | None = None
    target_rows: int | None = None
    carried: int = 0  # records since `start` in blocks already fed
    ranges: list[ByteRange] = field(default_factory=list)

    def feed(self, ends: Ints, cumulative: Ints) -> None:
        base, first = 0, 0
        while first < len(ends):
            if self.target_rows is not None:
                wanted = self.target_rows - self.carried + base
                found = int(np.searchsorted(cumulative[first:], wanted, side="left"))
            else:
                assert self.target_bytes is not None
                wanted = self.start + self.target_bytes
                found = int(np.searchsorted(ends[first:], wanted, side="left"))
            cut = first + found
            if cut >= len(ends):
                break
            records = self.carried + int(cumulative[cut]) - base
            self.close(int(ends[cut]), records)
            base, first = int(cumulative[cut]), cut + 1
        if len(ends):
            self.carried += int(cumulative[-1]) - base

    def close(self, end: int, records: int) -> None:
        if records > 0:
            self.ranges.append(ByteRange(self.start, end, records))
        self.start, self.carried = end, 0

    def finish(self, file_size: int, tail_records: int) -> list[ByteRange]:
        """`tail_records`: 1 when the file ends with a record that has no newline."""
        if self.start < file_size:
            self.close(file_size, self.carried + tail_records)
        return self.ranges


def group_row_groups(
    rows: Sequence[int], sizes: Sequence[int], target_bytes: int | None, target_rows: int | None
) -> list[RowGroupRun]:
    """Consecutive row groups until the run reaches the target; one row group is the
    smallest unit, so a row group larger than the target is a mini-batch of its own."""
    runs: list[RowGroupRun] = []
    current: list[int] = []
    run_rows = run_bytes = 0
    for index, (count, size) in enumerate(zip(rows, sizes, strict=True)):
        current.append(index)
        run_rows, run_bytes = run_rows + count, run_bytes + size
        full = run_rows >= target_rows if target_rows is not None else run_bytes >= (
            target_bytes or 0)
        if full:
            runs.append(RowGroupRun(tuple(current), run_rows, run_bytes))
            current, run_rows, run_bytes = [], 0, 0
    if current:
        runs.append(RowGroupRun(tuple(current), run_rows, run_bytes))
    return [run for run in runs if run.rows > 0]


@dataclass(frozen=True)
class PartitionGroup:
    """The rows of one distinct key combination, and the files that hold them."""

    values: dict[str, Any]
    files: tuple[str, ...]
    rows: int
    bytes: int


def group_partitions(
    counts: Iterable[tuple[str, int, Mapping[str, Any], int]],
) -> list[PartitionGroup]:
    """(file, file size, key values, rows with those values in the file) -> one group per
    distinct key combination, ordered by key values; bytes are the files' sizes in
    proportion to their rows of the group."""
    groups: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
    for path, size, values, rows in counts:
        key = tuple(values.items())
        group = groups.setdefault(key, {"files": [], "rows": 0, "bytes": 0.0, "shares": []})
        if path not in group["files"]:
            group["files"].append(path)
        group["rows"] += rows
        group["shares"].append((path, size, rows))
    totals: dict[str, int] = {}
    for group in groups.values():
        for path, _, rows in group["shares"]:
            totals[path] = totals.get(path, 0) + rows
    out = []
    for key in sorted(groups, key=sort_key):
        group = groups[key]
        size = sum(s * r / max(totals[p], 1) for p, s, r in group["shares"])
        out.append(PartitionGroup(dict(key), tuple(group["files"]), group["rows"], round(size)))
    return out


def sort_key(key: tuple[tuple[str, Any], ...]) -> tuple[tuple[int, str, Any], ...]:
    """Key combinations in value order; None first, and mixed types never compared."""
    return tuple((value is not None, type(value).__name__, value if value is not None else 0)
                 for _, value in key)
