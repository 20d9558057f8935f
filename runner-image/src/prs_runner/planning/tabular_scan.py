"""Planning tabular input: reads what the cuts need (record boundaries, Parquet footers,
partition key columns) and turns it into mini-batches. The cutting itself is pure
(tabular_cuts); this is the I/O around it."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import IO, Any

import numpy as np

from prs_runner.planning.partition_paths import (
    format_regex,
    misspelt_columns,
    path_key_values,
)
from prs_runner.planning.plan import (
    MiniBatch,
    TableSlice,
    assign_shards,
    opening_due,
    opening_limit,
)
from prs_runner.planning.tabular_cuts import (
    SPACES,
    Buffer,
    ByteRange,
    PartitionGroup,
    RangeCutter,
    count_records,
    group_partitions,
    group_row_groups,
    record_ends,
)
from prs_runner.step.spec import MiniBatchSize, SpecError
from prs_runner.storage.filesystem import FileEntry, Storage
from prs_runner.storage.object_reads import object_reads

BOM = b"\xef\xbb\xbf"
BLOCK_BYTES = 16 << 20  # large reads: the scan runs at disk speed, counting in C
SCAN_BYTES = 1 << 20  # one pass of the scan: its arrays hold up to 48 bytes per byte of it
FETCHERS = 4  # blocks of an object read at once (64 MB in memory)


def read_ahead(stream: IO[bytes], block_bytes: int) -> Iterator[bytes]:
    """The stream's blocks in order, the next ones read while the caller works on this one:
    on an object, FETCHERS ranged reads at once (one read stream cannot keep up with the
    counting); on a local file, one."""
    read_at = object_reads(stream)
    if read_at is None:
        yield from read_one_ahead(stream, block_bytes)
        return
    offsets = itertools.count(0, block_bytes)
    with ThreadPoolExecutor(FETCHERS, thread_name_prefix="prs-scan") as pool:
        window = deque(pool.submit(read_at, next(offsets), block_bytes)
                       for _ in range(FETCHERS))
        while window:
            block = window.popleft().result()
            if len(block) < block_bytes:  # the end: what is still in flight reads nothing
                window.clear()
            else:
                window.append(pool.submit(read_at, next(offsets), block_bytes))
            if block:
                yield block


def read_one_ahead(stream: IO[bytes], block_bytes: int) -> Iterator[bytes]:
    with ThreadPoolExecutor(1) as reader:
        pending = reader.submit(stream.read, block_bytes)
        while block := pending.result():
            pending = reader.submit(stream.read, block_bytes)
            yield block


class SizeChanged(ValueError):
    """A file scanned to a size other than the listing's: its ranges would not cover it."""


class RecordEndError(ValueError):
    """Where records end cannot be told from byte `offset` on: every row after it would be
    lost. Said with the file's line there (one more pass, only to word it)."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset

    def words(self, line: int) -> str:
        raise NotImplementedError


class LoneReturn(RecordEndError):
    """A CSV record ends in a carriage return alone (CR-only line ends): pyarrow ends a
    record there, the cuts only at a line feed, so ranges would not hold the records the
    plan counts."""

    def words(self, line: int) -> str:
        return (f"line {line} holds a carriage return with no line feed after it (byte "
                f"{self.offset}: old Mac line ends?); records are cut at line feeds, so rows "
                "would be lost: convert the file to LF or CRLF line ends (for example: tr "
                "'\\r' '\\n'), or quote the field that holds it")


class UnclosedQuote(RecordEndError):
    """A CSV quote opened in the record starting at `offset` never closes: the parser
    would take the rest of the file as one record."""

    def words(self, line: int) -> str:
        return (f"the record at line {line} (byte {self.offset}) opens a quote that never "
                "closes, so every row after it would be lost; fix the file (a stray \" in an "
                "unquoted field?)")


class StrayQuote(RecordEndError):
    """A CSV quote inside a field that does not start with one: pyarrow reads it as text,
    the quote count that finds record ends would not, so the cuts and the counts could
    merge records or split one."""

    def words(self, line: int) -> str:
        return (f"line {line} (byte {self.offset}) has a quote character inside a field that "
                "does not start with one (5\" disk), so where its records end is not sure: "
                "quote the whole field and double the quotes in it (\"5\"\" disk\"), or "
                "remove the quote")


def only_spaces(text: Buffer) -> bool:
    """Whether TEXT holds nothing but SPACES (a blank JSON line so far)."""
    return not bytes(text).translate(None, SPACES)


def line_of(stream: IO[bytes], offset: int) -> int:
    """The 1-based line number of byte OFFSET (one more pass, only to word an error)."""
    stream.seek(0)
    newlines, left = 0, offset
    while left > 0:
        block = stream.read(min(left, BLOCK_BYTES))
        if not block:
            break
        newlines, left = newlines + block.count(b"\n"), left - len(block)
    return newlines + 1


def scan_pieces(stream: IO[bytes], block_bytes: int, scan_bytes: int) -> Iterator[memoryview]:
    """The stream's bytes in order, in views of at most SCAN_BYTES of the blocks read (no
    copy): the scan's arrays hold an offset per line of what it is given, so a file of
    short lines would hold hundreds of MB per block. The first piece holds at least the
    file's first three bytes, so whether it opens with a byte order mark is known from it."""
    first, started = b"", False  # the file's first bytes, while fewer than three
    for block in read_ahead(stream, block_bytes):
        start = 0
        if not started:
            first += block
            if len(first) < len(BOM):
                continue
            block, first, started = first, b"", True  # the first block is not held past its turn
            start = max(scan_bytes, len(BOM))
            yield memoryview(block)[:start]
        view = memoryview(block)
        for at in range(start, len(view), scan_bytes):
            yield view[at:at + scan_bytes]
    if first:  # the whole file is shorter
        yield memoryview(first)


def scan_text_file(
    stream: IO[bytes], size: int, fmt: str, target_bytes: int | None, target_rows: int | None,
    block_bytes: int = BLOCK_BYTES,
    on_cut: Callable[[int, Sequence[ByteRange]], None] | None = None,
    scan_bytes: int = SCAN_BYTES,
) -> tuple[int, list[ByteRange]]:
    """(end of the CSV header, record ranges) of a CSV or JSON Lines file, read once in
    large blocks and scanned in pieces of them. The header is the first record (none for
    JSON Lines). ON_CUT, after each piece: the header's end and the ranges cut so far (they
    do not change)."""
    quoted = fmt == "csv"
    header_end: int | None = None if quoted else 0
    cutter: RangeCutter | None = None
    in_quotes, offset, previous_end = False, 0, 0
    last: Buffer = b""
    last_offset, fields_from, spaces_before = 0, 0, True
    for block in scan_pieces(stream, block_bytes, scan_bytes):
        starts_in_quotes = in_quotes
        if offset == 0:  # the first piece holds the file's first three bytes
            fields_from = len(BOM) if block[:len(BOM)] == BOM else 0  # pyarrow skips it
            # A line of only the byte order mark is blank: the header is the record after it.
            previous_end = fields_from
        byte_before = last[-1] if len(last) else -1
        relative, in_quotes, lone, stray = record_ends(
            block, in_quotes, quoted, byte_before, fields_from - offset)
        if quoted:
            check_record_ends(block, offset, starts_in_quotes, lone, stray, last)
        ends = relative + offset
        cumulative = count_records(block, ends, previous_end, offset, byte_before,
                                   None if quoted else spaces_before)
        if not quoted:  # JSON Lines: whether the line still open is only spaces so far
            # (past a byte order mark)
            line_start = max(int(ends[-1]) if len(ends) else offset, fields_from)
            spaces_before = (spaces_before or bool(len(ends))) and only_spaces(
                block[max(line_start - offset, 0):])
        if len(ends):
            previous_end = int(ends[-1])
        if header_end is None and len(ends):
            # The header is the first record: blank lines before it are not (pyarrow skips
            # them too), and are read with it.
            first = int(np.searchsorted(cumulative, 1))
            if first < len(ends):
                header_end = int(ends[first])
                ends, cumulative = ends[first + 1:], cumulative[first + 1:] - cumulative[first]
        if header_end is not None:
            cutter = cutter or RangeCutter(header_end, target_bytes, target_rows)
            cutter.feed(ends, cumulative)
            if on_cut is not None:
                on_cut(header_end, cutter.ranges)
        last, last_offset = block, offset
        offset += len(block)
    if offset != size:
        raise SizeChanged(f"read {offset} bytes where the listing found {size}: the file "
                          "changed while it was planned (rows past the listed size would be "
                          "left out); plan it again once it no longer changes")
    if in_quotes:
        raise UnclosedQuote(previous_end)
    if cutter is None:  # empty, or a header without records
        return header_end or 0, []
    if not quoted:  # JSON Lines: a last line without its newline, unless only spaces
        return 0, cutter.finish(size, int(not spaces_before))
    tail = bytes(last[previous_end - last_offset:]) if previous_end >= last_offset else b"x"
    # a last line of spaces is a record to pyarrow (a value), a carriage return alone is not
    return header_end or 0, cutter.finish(size, int(tail not in (b"", b"\r")))


def check_record_ends(block: Buffer, offset: int, in_quotes: bool, lone: int, stray: int,
                      last: Buffer) -> None:
    """The first problem of BLOCK in the file's order, if any: the last piece's final byte,
    a carriage return that no newline follows (LoneReturn), or what record_ends found in
    BLOCK (LONE, STRAY: offsets in it, -1 for none). IN_QUOTES: the block starts inside a
    quoted field."""
    if last[-1:] == b"\r" and block[:1] != b"\n" and not in_quotes:
        raise LoneReturn(offset - 1)
    found = [(at, kind) for at, kind in ((stray, StrayQuote), (lone, LoneReturn)) if at >= 0]
    if found:
        at, kind = min(found, key=lambda problem: problem[0])
        raise kind(offset + at)


def named_errors(entry: FileEntry, stream: IO[bytes], read: Callable[[], Any]) -> Any:
    """What read() returns, or a SpecError naming ENTRY when it cannot be read (pyarrow's
    own errors do not say which file), or holds a quote that never closes."""
    try:
        return read()
    except SpecError:
        raise
    except SizeChanged as changed:
        raise SpecError([f"spec.input.uri: {entry.path}: {changed}"]) from None
    except RecordEndError as bad:
        line = line_of(stream, bad.offset)
        raise SpecError([f"spec.input.uri: {entry.path}: {bad.words(line)}"]) from None
    except (ValueError, OSError) as error:  # pyarrow.ArrowInvalid is a ValueError
        raise SpecError([f"spec.input.uri: {entry.path}: not a readable {describe(error)}; "
                         "fix or remove the file, or narrow the glob"]) from None


def describe(error: Exception) -> str:
    text = " ".join(str(error).split())
    return f"file ({text[:300]})"


Part = tuple[tuple[str, ...], int, TableSlice]  # a mini-batch to be: files, bytes, slice


def byte_range_part(entry: FileEntry, header_end: int, part: ByteRange) -> Part:
    return (entry.path,), part.end - part.start, TableSlice(
        rows=part.records, start=part.start, end=part.end, header_end=header_end)


def extend_cut(entry: FileEntry, parts: list[Part], on_cut: Callable[[list[Part]], None],
               header_end: int, ranges: Sequence[ByteRange]) -> None:
    """PARTS, grown by the ranges cut since the last call, to ON_CUT (no quadratic copy)."""
    parts.extend(byte_range_part(entry, header_end, r) for r in ranges[len(parts):])
    on_cut(parts)


def file_parts(storage: Storage, entry: FileEntry, fmt: str, size: MiniBatchSize,
               on_cut: Callable[[list[Part]], None] | None = None) -> list[Part]:
    """The mini-batches of one file, in offset order; ON_CUT: those of a large text file
    cut so far, as the scan goes."""
    with storage.open_seekable(entry.path) as stream:
        if fmt == "parquet":
            slices = named_errors(entry, stream, partial(list, parquet_slices(entry, stream, size)))
            return [((e.path,), b, part) for e, b, part in slices]
        cut = None if on_cut is None else partial(extend_cut, entry, [], on_cut)
        header_end, ranges = named_errors(entry, stream, partial(
            scan_text_file, stream, entry.size, fmt, size.bytes, size.rows,
            block_bytes=BLOCK_BYTES, on_cut=cut))
    return [byte_range_part(entry, header_end, r) for r in ranges]


def parquet_slices(
    entry: FileEntry, stream: IO[bytes], size: MiniBatchSize
) -> Iterator[tuple[FileEntry, int, TableSlice]]:
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(stream).metadata
    groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
    rows = [group.num_rows for group in groups]
    sizes = [sum(group.column(c).total_compressed_size for c in range(group.num_columns))
             for group in groups]
    for run in group_row_groups(rows, sizes, size.bytes, size.rows):
        yield entry, run.bytes, TableSlice(rows=run.rows, row_groups=run.row_groups)


class Openings:
    """Publishes the first mini-batches while the rest of the input is still being cut
    (plan.opening_due says when), so that shard 0 starts on them (plan_store.OpeningView)."""

    def __init__(self, publish: Callable[[list[MiniBatch]], None], input_bytes: int,
                 node_count: int) -> None:
        self.publish = publish
        self.limit = opening_limit(input_bytes, node_count)
        self.published = self.eligible = self.eligible_bytes = 0
        self.closed = False  # past the limit: the rest waits for the whole plan

    def offer(self, done: Sequence[Part], current: Sequence[Part]) -> None:
        """DONE: the mini-batches of the files cut; CURRENT: of the file being cut, so far."""
        while not self.closed and self.eligible < len(done) + len(current):
            index = self.eligible
            _, size, _ = done[index] if index < len(done) else current[index - len(done)]
            if self.limit is not None and self.eligible_bytes + size > self.limit:
                self.closed = True
                break
            self.eligible, self.eligible_bytes = index + 1, self.eligible_bytes + size
        if opening_due(self.published, self.eligible):
            parts = [*done[self.published:self.eligible],
                     *current[max(self.published - len(done), 0):max(self.eligible - len(done), 0)]]
            self.publish([MiniBatch(id=self.published + i, shard=0, bytes=b, items=files,
                                    table=part) for i, (files, b, part) in enumerate(parts)])
            self.published = self.eligible


def plan_tabular(
    storage: Storage, listing: Sequence[FileEntry], fmt: str, size: MiniBatchSize,
    partition_keys: Sequence[str], node_count: int, openings: Openings | None = None,
    partition_format: str | None = None,
) -> list[MiniBatch]:
    """The mini-batches; OPENINGS publishes the first ones as they are cut (not with
    partitionKeys, whose groups are known only at the end)."""
    if partition_keys:
        groups = partition_groups(storage, listing, fmt, partition_keys, partition_format)
        parts = [(g.files, g.bytes, TableSlice(rows=g.rows, partition=g.values)) for g in groups]
        openings = None
    else:
        parts = []
        for entry in listing:
            on_cut = None if openings is None else partial(openings.offer, parts)
            parts.extend(file_parts(storage, entry, fmt, size, on_cut))
            if openings is not None:
                openings.offer(parts, [])
    opened = openings.published if openings is not None else 0
    shards = assign_shards([p[1] for p in parts], node_count, opened)
    return [MiniBatch(id=i, shard=shards[i], bytes=b, items=files, table=part)
            for i, (files, b, part) in enumerate(parts)]


def partition_groups(
    storage: Storage, listing: Sequence[FileEntry], fmt: str, keys: Sequence[str],
    partition_format: str | None = None,
) -> list[PartitionGroup]:
    """Key values from the files' paths where they give them (partition_paths), without
    reading data; the other keys from the files, reading only those columns."""
    regex = format_regex(partition_format) if partition_format else None
    counts: list[tuple[str, int, dict[str, Any], int]] = []
    for entry in listing:
        with storage.open_seekable(entry.path) as stream:
            columns = named_errors(entry, stream, partial(column_names, stream, fmt))
            known = path_values(entry.path, keys, regex, columns, partition_format)
            missing = [k for k in keys if k not in known]
            if not missing:
                rows = named_errors(entry, stream, partial(count_rows, stream, entry, fmt))
                counts.append((entry.path, entry.size, known, rows))
                continue
            absent = [k for k in missing if k not in columns]
            if absent:
                raise SpecError([absent_keys_message(entry.path, absent, columns, keys)])
            found = named_errors(entry, stream,
                                 partial(key_value_counts, stream, fmt, missing))
            for values, rows in found:
                counts.append((entry.path, entry.size, {k: (known | values)[k] for k in keys},
                               rows))
    return group_partitions(counts)


def path_values(path: str, keys: Sequence[str], regex: Any, columns: Sequence[str],
                partition_format: str | None) -> dict[str, Any]:
    try:
        return path_key_values(path, keys, regex, columns)
    except ValueError:
        raise SpecError([f"spec.input.partitionFormat: {path} does not have the shape "
                         f"{partition_format}"]) from None


def absent_keys_message(path: str, absent: Sequence[str], columns: Sequence[str],
                        keys: Sequence[str]) -> str:
    """What a user needs to fix a key that is neither a column nor a folder of PATH."""
    hints = "".join(f"; did you mean {column!r} for {key!r}?"
                    for key, column in misspelt_columns(absent, columns).items())
    folders = path.split("/")[:-1]
    return (f"spec.input.partitionKeys: {', '.join(absent)} not in {path}: its columns are "
            f"{', '.join(columns) or 'none'}; its folders are {'/'.join(folders) or 'none'} "
            "(a key's value comes from a column, a Store=1000/ folder, input.partitionFormat, "
            f"or, when no key is a column, one folder level per key in key order){hints}")


def count_rows(stream: IO[bytes], entry: FileEntry, fmt: str) -> int:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(stream).metadata.num_rows)
    _, ranges = scan_text_file(stream, entry.size, fmt, entry.size + 1, None)
    return sum(r.records for r in ranges)


def column_names(stream: IO[bytes], fmt: str) -> list[str]:
    from prs_runner.planning.tabular_reading import file_columns

    return file_columns(stream, fmt)


def key_value_counts(
    stream: IO[bytes], fmt: str, keys: Sequence[str]
) -> list[tuple[dict[str, Any], int]]:
    import pyarrow.compute as pc

    from prs_runner.planning.tabular_reading import read_columns

    table = read_columns(stream, fmt, keys)  # the caller checked every key is a column
    counted = table.group_by(list(keys)).aggregate(
        [(keys[0], "count", pc.CountOptions(mode="all"))])
    out = []
    for row in counted.to_pylist():
        rows = row.pop(f"{keys[0]}_count")
        out.append(({k: json_value(row[k]) for k in keys}, int(rows)))
    return out


def json_value(value: Any) -> Any:
    """Key values go into plan.json: numbers, text, booleans and None as they are, anything
    else (dates, timestamps) as its text, which the reader casts back to the column type."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and np.isfinite(value):
        return value
    return str(value)
