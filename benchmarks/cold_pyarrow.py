"""The program a user would write instead of `prs run` for benchmarks/tabular_read.py: plain
pyarrow over 1 MB pieces of a CSV (line-aligned) or runs of Parquet row groups, in a
`multiprocessing.Pool(2)`, each piece converted to pandas. Run as a script it is the cold
baseline: a fresh interpreter that imports only what such a program imports.

    python benchmarks/cold_pyarrow.py csv|parquet PATH
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

MB = 1 << 20


def line_ranges(path: Path, size: int) -> list[tuple[int, int]]:
    """The baseline's own 1 MB line-aligned ranges (this data has no quoted newlines)."""
    ranges, total = [], path.stat().st_size
    with path.open("rb") as stream:
        start = len(stream.readline())
        while start < total:
            stream.seek(min(start + size, total))
            stream.readline()
            end = min(stream.tell(), total)
            ranges.append((start, end))
            start = end
    return ranges


def read_csv_range(task: tuple[str, int, int, bool]) -> int:
    path, start, end, pandas = task
    with open(path, "rb") as stream:
        header = stream.readline()
        stream.seek(start)
        data = header + stream.read(end - start)
    table = pacsv.read_csv(pa.py_buffer(data), read_options=pacsv.ReadOptions(use_threads=False))
    return len(to_pandas(table)) if pandas else table.num_rows


def to_pandas(table: pa.Table) -> Any:
    """As prs hands frames to run(): dates as datetime64, not one Python object each."""
    return table.to_pandas(split_blocks=True, date_as_object=False)


FOOTERS: dict[str, Any] = {}  # per pool process, as prs keeps them per worker


def read_row_groups(task: tuple[str, list[int], bool]) -> int:
    path, groups, pandas = task
    parquet = pq.ParquetFile(path, metadata=FOOTERS.get(path))
    FOOTERS[path] = parquet.metadata
    table = parquet.read_row_groups(groups, use_threads=False)
    return len(to_pandas(table)) if pandas else table.num_rows


def row_group_runs(path: Path, size: int) -> list[list[int]]:
    metadata = pq.ParquetFile(path).metadata
    runs: list[list[int]] = [[]]
    run_bytes = 0
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        runs[-1].append(index)
        run_bytes += sum(group.column(c).total_compressed_size for c in range(group.num_columns))
        if run_bytes >= size:
            runs.append([])
            run_bytes = 0
    return [r for r in runs if r]


def time_pool(function: Any, tasks: list[Any]) -> tuple[float, int]:
    started = time.perf_counter()
    with multiprocessing.Pool(2) as pool:
        rows = sum(pool.imap(function, tasks))
    return time.perf_counter() - started, rows


def pool_tasks(fmt: str, path: Path, pandas: bool) -> tuple[Any, list[Any]]:
    if fmt == "csv":
        return read_csv_range, [(str(path), s, e, pandas) for s, e in line_ranges(path, MB)]
    return read_row_groups, [(str(path), g, pandas) for g in row_group_runs(path, MB)]


def run_pool(fmt: str, path: Path) -> None:
    """What a user's own script does from a cold start: import, cut, Pool(2), to_pandas."""
    function, tasks = pool_tasks(fmt, path, pandas=True)
    with multiprocessing.Pool(2) as pool:
        sum(pool.imap(function, tasks))




if __name__ == "__main__":
    run_pool(sys.argv[1], Path(sys.argv[2]))
