"""Reading one tabular mini-batch: pyarrow parses and types it, pandas only at the hand-off
to the entry script. Imported by workers of tabular steps only (pyarrow is slow to import).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from prs_runner.planning.partition_paths import format_regex, path_key_values
from prs_runner.planning.plan import MiniBatch, TableSlice
from prs_runner.storage.filesystem import Storage

if TYPE_CHECKING:
    import pandas as pd

ROW_TEXT_CHARS = 500  # of a malformed row, in the error: the report stays readable
MIN_BLOCK_BYTES = 1 << 20
MAX_BLOCK_BYTES = 1 << 28  # pyarrow's block size is a 32-bit int; whole files can be larger
KEPT = 16  # Parquet footers and CSV headers a worker keeps, most recent files


def block_size(data: bytes | bytearray) -> int:
    """One parser block for a mini-batch's bytes (faster than several small ones)."""
    return min(max(len(data) + 1, MIN_BLOCK_BYTES), MAX_BLOCK_BYTES)


@dataclass
class SkippedRows:
    """CSV rows the parser rejected (wrong number of fields): failed records, not a failed
    mini-batch. Keeps the parser's message of the first one."""

    where: str
    count: int = 0
    first: str = ""

    def __call__(self, row: Any) -> str:
        if not self.count:
            text = row.text if len(row.text) <= ROW_TEXT_CHARS else (
                f"{row.text[:ROW_TEXT_CHARS]}... ({len(row.text):,} characters)")
            self.first = (f"CSV parse error in {self.where}: Expected {row.expected_columns} "
                          f"columns, got {row.actual_columns}: {text}")
        self.count += 1
        return "skip"

    def message(self) -> str:
        more = f" (and {self.count - 1} more rows)" if self.count > 1 else ""
        return self.first + more


def parse_csv(data: bytes | bytearray, on_invalid: SkippedRows | None = None) -> pa.Table:
    options = pacsv.ParseOptions(newlines_in_values=b'"' in data,
                                 invalid_row_handler=on_invalid)
    read = pacsv.ReadOptions(use_threads=False, block_size=block_size(data))
    return pacsv.read_csv(pa.py_buffer(data), read_options=read, parse_options=options)


def parse_jsonl(data: bytes | bytearray) -> pa.Table:
    read = pajson.ReadOptions(use_threads=False, block_size=block_size(data))
    return pajson.read_json(pa.py_buffer(data), read_options=read)


def read_range(stream: IO[bytes], fmt: str, part: TableSlice, on_invalid: SkippedRows,
               header: bytes = b"") -> pa.Table:
    """The slice's records (after HEADER, the file's CSV header) parsed. One read into one
    buffer: a buffered reader passes a read larger than its buffer straight through, so an
    object store gets one ranged GET, not one plus a buffer's worth past the end."""
    data = bytearray(len(header) + part.end - part.start)
    data[: len(header)] = header
    stream.seek(part.start)
    got = stream.readinto(memoryview(data)[len(header):])  # type: ignore[attr-defined]
    del data[len(header) + got:]
    if fmt == "jsonl":
        return parse_jsonl(data)
    return parse_csv(data, on_invalid)


def read_whole(stream: IO[bytes], fmt: str, on_invalid: SkippedRows) -> pa.Table:
    if fmt == "parquet":
        return pq.ParquetFile(stream).read(use_threads=False)
    data = stream.read()
    return parse_jsonl(data) if fmt == "jsonl" else parse_csv(data, on_invalid)


def file_columns(stream: IO[bytes], fmt: str) -> list[str]:
    """The column names of a file (its footer, or the first block of a text file); the
    stream is left at its start."""
    try:
        if fmt == "parquet":
            return list(pq.ParquetFile(stream).schema_arrow.names)
        opened = pajson.open_json(stream) if fmt == "jsonl" else pacsv.open_csv(stream)
        return list(opened.schema.names)
    finally:
        stream.seek(0)


def read_columns(stream: IO[bytes], fmt: str, columns: Sequence[str]) -> pa.Table:
    """Only those of `columns` the file has, whole file: partition key values at planning."""
    if fmt == "parquet":
        parquet = pq.ParquetFile(stream)
        return parquet.read(columns=[c for c in columns if c in parquet.schema_arrow.names])
    if fmt == "jsonl":
        table = pajson.read_json(stream)
        return table.select([c for c in columns if c in table.column_names])
    names = pacsv.open_csv(stream).schema.names
    stream.seek(0)
    convert = pacsv.ConvertOptions(include_columns=[c for c in columns if c in names])
    return pacsv.read_csv(stream, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                          convert_options=convert)


def key_mask(table: pa.Table, values: dict[str, Any]) -> Any:
    mask = None
    for key, value in values.items():
        column = table[key]
        if value is None:
            match = pc.is_null(column)
        else:
            scalar = pa.scalar(value)
            if scalar.type != column.type:
                scalar = scalar.cast(column.type)
            match = pc.fill_null(pc.equal(column, scalar), False)
        mask = match if mask is None else pc.and_(mask, match)
    return mask


def read_partition(storage: Storage, mb: MiniBatch, fmt: str, partition: dict[str, Any],
                   skipped: SkippedRows, regex: re.Pattern[str] | None = None) -> pa.Table:
    """The rows of MB's files with its key values: keys the path gives (as planning took
    them, partition_paths) are added as columns where the file lacks them, the others
    filter the rows."""
    tables = []
    for path in mb.items:
        with storage.open_seekable(path) as stream:
            table = read_whole(stream, fmt, skipped)
        folder = path_key_values(path, list(partition), regex, table.column_names)
        in_data = {k: v for k, v in partition.items() if k not in folder}
        if in_data:
            table = table.filter(key_mask(table, in_data))
        for key, value in folder.items():
            if key not in table.column_names:
                table = table.append_column(key, pa.array([value] * table.num_rows))
        tables.append(table)
    return pa.concat_tables(tables, promote_options="default")


class TableReader:
    """Reads the mini-batches of one step in one worker. A worker often reads many
    mini-batches of the same file, so it keeps that file open (on an object store, opening
    is a request), its CSV header, and the footers of the Parquet files it read last
    (parsing a footer with many row groups can cost more than reading the rows).

    With AHEAD (input on object storage, where each read is a round trip), the reading and
    parsing happen on a thread of their own, and the next mini-batch the supervisor queued
    is read while run() works on this one. Only that thread touches the open file."""

    AHEAD = 1  # mini-batches read ahead, each held in memory until run
    AHEAD_MAX_BYTES = 256 << 20  # larger mini-batches are read when their turn comes

    def __init__(self, storage: Storage, fmt: str, ahead: bool = False,
                 partition_format: str | None = None) -> None:
        self.storage, self.fmt = storage, fmt
        self.partition_regex = format_regex(partition_format) if partition_format else None
        self.footers: dict[str, Any] = {}
        self.headers: dict[str, bytes] = {}
        self.opened: tuple[str, IO[bytes]] | None = None
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="prs-read") if ahead else None
        self.ahead: dict[int, Future[tuple[pa.Table, SkippedRows]]] = {}
        self.lock = threading.Lock()  # the command reader thread calls prefetch()

    def prefetch(self, mb: MiniBatch) -> None:
        """Start reading MB if there is room: it runs next or soon after."""
        with self.lock:
            if (self.pool is None or mb.id in self.ahead or len(self.ahead) >= self.AHEAD
                    or mb.bytes > self.AHEAD_MAX_BYTES):
                return
            self.ahead[mb.id] = self.pool.submit(self.table, mb)

    def stream(self, path: str) -> IO[bytes]:
        if self.opened is None or self.opened[0] != path:
            self.close()
            self.opened = (path, self.storage.open_seekable(path))
        return self.opened[1]

    def close(self) -> None:
        if self.opened is not None:
            self.opened[1].close()
            self.opened = None

    def parquet_file(self, path: str, stream: IO[bytes]) -> pq.ParquetFile:
        parquet = pq.ParquetFile(stream, metadata=self.footers.pop(path, None))
        keep(self.footers, path, parquet.metadata)
        return parquet

    def header(self, path: str, stream: IO[bytes], part: TableSlice) -> bytes:
        header = self.headers.pop(path, None)
        if header is None or len(header) != part.header_end:
            stream.seek(0)
            header = stream.read(part.header_end)
        keep(self.headers, path, header)
        return header

    def read(self, mb: MiniBatch) -> tuple[pd.DataFrame, str]:
        """The mini-batch as a DataFrame (index 0..n-1), and the parser's message about rows
        it skipped ("" when none). A read's failure is raised here, when MB runs."""
        with self.lock:
            future = self.ahead.pop(mb.id, None)
        if future is None and self.pool is not None:
            future = self.pool.submit(self.table, mb)
        table, skipped = future.result() if future is not None else self.table(mb)
        frame = table.to_pandas(split_blocks=True, date_as_object=False)
        return frame, skipped.message() if skipped.count else ""

    def table(self, mb: MiniBatch) -> tuple[pa.Table, SkippedRows]:
        part = mb.table
        assert part is not None
        path = mb.items[0]
        skipped = SkippedRows(f"{path} bytes {part.start}-{part.end}" if part.end else path)
        if part.partition is not None:
            return read_partition(self.storage, mb, self.fmt, part.partition, skipped,
                                  self.partition_regex), skipped
        try:
            return self.read_slice(path, part, skipped), skipped
        except BaseException:
            self.close()  # a failed read may leave the stream anywhere; the retry reopens
            raise

    def read_slice(self, path: str, part: TableSlice, skipped: SkippedRows) -> pa.Table:
        stream = self.stream(path)
        if self.fmt == "parquet":
            return self.parquet_file(path, stream).read_row_groups(
                list(part.row_groups), use_threads=False)
        header = self.header(path, stream, part) if part.header_end else b""
        return read_range(stream, self.fmt, part, skipped, header)


def keep(cache: dict[str, Any], path: str, value: Any) -> None:
    """Put PATH last (most recent) and drop the oldest beyond KEPT."""
    cache[path] = value
    while len(cache) > KEPT:
        cache.pop(next(iter(cache)))
