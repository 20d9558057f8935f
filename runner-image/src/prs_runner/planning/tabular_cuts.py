"""Cutting tabular files into mini-batches. Pure: functions over bytes, row-group sizes and
key values; the file reading around them is in tabular_scan.

A CSV record ends at a newline with an even number of quote characters before it (counted
from the start of the file), so a quoted field that holds a newline is never cut. That holds
only while every quote that opens starts a field (after the delimiter, a line end, or the
quote before it: two in a row inside a quoted field are one quote). A quote inside an
unquoted field (`5" disk`) is text to pyarrow but would flip the count: the scan finds the
first such quote, and the planner refuses the file there rather than cut it where pyarrow
does not. JSON Lines
records end at every newline (JSON strings cannot hold a raw newline). Blank lines are
valid cut points but not records (pyarrow skips them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

QUOTE = ord('"')
NEWLINE = ord("\n")
CARRIAGE_RETURN = ord("\r")
SLICE_BYTES = 256 << 10  # fits the CPU cache: numpy's passes over it stay cheap
TASK_BYTES = 2 << 20  # one thread's share of a block
Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.uint8]
NO_STRAY = (-1, -1)
BLOCK_EDGE = np.frombuffer(b",", dtype=np.uint8)  # before a block: the scan has that byte


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


@dataclass(frozen=True)
class SlicePositions:
    """Newlines and quotes of one slice of a block, whatever the quoting state it starts in
    (so slices can be scanned in parallel, and only the cheap selection is sequential)."""

    newlines: Ints  # offsets within the block
    odd_before: Flags | None  # per newline, 1 where the slice holds an odd number of quote
    # characters before it; None: the slice was not scanned for quotes (its block has none)
    odd: bool = False  # the slice holds an odd number of quote characters
    returns: int = 0  # carriage returns in the slice less its newlines that follow one
    # the number of its first quote out of place (-1: none), should the slice start
    # outside a quoted field, and inside one
    stray: tuple[int, int] = NO_STRAY
    span: tuple[int, int] = (0, 0)  # the slice's start and stop in the block


def slice_positions(data: npt.NDArray[np.uint8], start: int, stop: int, quoted: bool,
                    returns: bool, field_start: int = -1) -> SlicePositions:
    """RETURNS: count the carriage returns too (a block that holds one). FIELD_START: the
    offset where the file's first field starts, when in this block (0, or 3 past a BOM)."""
    part = data[start:stop]
    found = np.flatnonzero(part == NEWLINE)
    newlines = found.astype(np.int64, copy=False)  # pragma: no mutate: int64 already, no copy
    lone = 0
    if returns:
        # A newline at the block's start follows the previous block's last byte.
        before = newlines[int(start == 0 and len(newlines) > 0 and newlines[0] == 0):] + (
            start - 1)
        lone = int(np.count_nonzero(part == CARRIAGE_RETURN)
                   - np.count_nonzero(data[before] == CARRIAGE_RETURN))
    if not quoted:
        return SlicePositions(newlines + start, None, False, lone)
    # The parity of the quotes between one newline and the next, in one pass and without
    # listing the quotes (a CSV of quoted text holds several per record); a newline is no
    # quote, so a segment that starts at one counts the quotes after it.
    is_quote = part == QUOTE
    segments = np.bitwise_xor.reduceat(is_quote.view(np.uint8),
                                       np.concatenate((newlines[:0], [0], newlines)))
    odd = np.bitwise_xor.accumulate(segments)
    stray = stray_quotes(data, start, is_quote, field_start)
    return SlicePositions(newlines + start, odd[:-1], bool(odd[-1]), lone, stray, (start, stop))


def stray_quotes(data: npt.NDArray[np.uint8], start: int, is_quote: npt.NDArray[np.bool_],
                 field_start: int) -> tuple[int, int]:
    """Which quote of the slice of the block DATA from START (IS_QUOTE marks them) is the
    first out of place (its number in the slice, from 0; -1: none), should the slice start
    outside a quoted field, and should it start inside one. Quotes open and close in turn;
    one that opens must follow a field's edge (the delimiter, a line end, or the quote
    before it), or start the file's first field (at FIELD_START). One that closes may be
    followed by anything: pyarrow reads on to the field's end, and a quote there opens
    nothing, so it is found out of place. A quote that starts the block is left to the
    scan, which has the byte before it."""
    # the byte before each byte of the slice (compress takes as many as IS_QUOTE marks)
    end = start - 1 + len(is_quote)  # pragma: no mutate: longer would do
    previous = data[start - 1:end] if start else np.concatenate(
        (BLOCK_EDGE, data[:end]))  # pragma: no mutate: longer would do
    before = np.compress(is_quote, previous)
    edge_before = (before == ord(",")) | (before == NEWLINE) | (before == QUOTE) | (
        before == CARRIAGE_RETURN)
    at = field_start - start  # pragma: no mutate: FIELD_START is 3 in the first slice only
    if 0 < at < len(is_quote) and is_quote[at]:  # pragma: no mutate: AT is 3 (past a BOM)
        edge_before[0] = True  # the file's first quote: the BOM is all before it
    return first_wrong(edge_before, 0), first_wrong(edge_before, 1)


def first_wrong(edge_before: npt.NDArray[np.bool_], first_opening: int) -> int:
    """The number of the first quote that opens (every other one from the
    FIRST_OPENING-th) without an edge before it; -1: none does."""
    opening = edge_before[first_opening::2]
    if opening.all():
        return -1  # pragma: no mutate: any number below 0 says none
    return first_opening + 2 * int(np.argmin(opening))


def quote_offset(data: npt.NDArray[np.uint8], piece: SlicePositions, number: int) -> int:
    """The block offset of quote NUMBER (from 0) of PIECE."""
    start, stop = piece.span
    return int(np.flatnonzero(data[start:stop] == QUOTE)[number]) + start


def task_positions(data: npt.NDArray[np.uint8], start: int, quoted: bool,
                   returns: bool, field_start: int = -1) -> list[SlicePositions]:
    """One task: cache-sized slices, numpy all the way (it releases the GIL)."""
    stop = min(start + TASK_BYTES, len(data))
    return [slice_positions(data, s, min(s + SLICE_BYTES, stop), quoted, returns, field_start)
            for s in range(start, stop, SLICE_BYTES)]


def select_ends(pieces: Iterable[SlicePositions],
                in_quotes: bool) -> tuple[Ints, bool, tuple[SlicePositions, int] | None]:
    """The newlines outside quotes, given the quoting state at the first slice's start; and
    the first quote out of place (its slice, and its number there; None: none), past which
    the ends do not hold."""
    ends: list[Ints] = []
    stray = None
    for piece in pieces:
        if piece.odd_before is None:
            ends.append(piece.newlines[:0] if in_quotes else piece.newlines + 1)
            continue
        ends.append(piece.newlines[piece.odd_before == int(in_quotes)] + 1)
        number = piece.stray[int(in_quotes)]
        if stray is None and number >= 0:
            stray = (piece, number)
        in_quotes = in_quotes != piece.odd
    return (np.concatenate(ends) if ends else np.empty(0, dtype=np.int64)), in_quotes, stray


def record_ends(
    block: bytes, in_quotes: bool, quoted: bool, map_tasks: Callable[..., Iterable[Any]] = map,
    field_start: int = -1,
) -> tuple[Ints, bool, int, int]:
    """Offsets (within `block`) just past each newline that ends a record, whether the
    block ends inside a quoted field, how many of its carriage returns (CSV only) no
    newline follows, in quotes or not (lone_returns says where), its last byte left out,
    and the offset of its first quote out of place (-1: none; see stray_quotes, which
    FIELD_START is for). `in_quotes`: the block starts inside one. Counting stays in C
    (numpy); `map_tasks` may run the slices' scans on threads."""
    data = np.frombuffer(block, dtype=np.uint8)
    returns = quoted and b"\r" in block  # memchr: most blocks skip the count
    quoted = quoted and b'"' in block  # and the quote pass
    tasks = map_tasks(lambda start: task_positions(data, start, quoted, returns, field_start),
                      range(0, len(data), TASK_BYTES))
    pieces = [piece for task in tasks for piece in task]
    ends, in_quotes, stray = select_ends(pieces, in_quotes)
    lone = sum(piece.returns for piece in pieces) - int(returns and block.endswith(b"\r"))
    return ends, in_quotes, lone, -1 if stray is None else quote_offset(data, *stray)


def lone_returns(block: bytes, in_quotes: bool, quoted: bool) -> Ints:
    """Offsets (within BLOCK) of the carriage returns outside quotes that no line feed
    follows: pyarrow ends a record at one (old Mac files end every line so), the cuts do
    not. IN_QUOTES: the block starts inside a quoted field. A CR that is the block's last
    byte is left out: what follows it is in the next block."""
    data = np.frombuffer(block, dtype=np.uint8)
    returns = np.flatnonzero(data[:-1] == CARRIAGE_RETURN)
    lone: Ints = returns[data[returns + 1] != NEWLINE]
    if not quoted or not len(lone):
        return lone
    quotes_before = np.searchsorted(np.flatnonzero(data == QUOTE), lone)
    outside: Ints = lone[(quotes_before & 1) == int(in_quotes)]
    return outside


def count_records(block: bytes, ends: Ints, previous_end: int, offset: int,
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


SPACES = b" \t\r"


def space_lines(block: bytes, ends: Ints, previous_end: int, offset: int,
                spaces_before: bool) -> npt.NDArray[np.bool_]:
    """Per line ending at ENDS, whether it holds only SPACES before its newline; the first
    one's bytes before BLOCK are judged by SPACES_BEFORE. Only lines that start with one of
    them are looked at (JSON Lines records start with their value)."""
    spaces = np.zeros(len(ends), dtype=bool)
    if not len(ends):
        return spaces
    data = np.frombuffer(block, dtype=np.uint8)
    starts = np.concatenate(([previous_end], ends[:-1])) - offset
    first = data[np.maximum(starts, 0)]
    # which lines to look at: a wider look gives the same answer, only slower
    maybe = (first == ord(" ")) | (first == ord("\t")) | (  # pragma: no mutate: wider
        first == CARRIAGE_RETURN)  # pragma: no mutate: wider
    if starts[0] < 0:  # pragma: no mutate: at 0, SPACES_BEFORE is true (a line just began)
        maybe[0] = spaces_before
    for line in np.flatnonzero(maybe):
        spaces[line] = not block[max(int(starts[line]), 0):int(ends[line]) - offset].strip()
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
