"""Tabular reading throughput: `prs run` over a 500 MB CSV (10 mixed columns) and its Parquet
copy in 1 MB mini-batches (1 node x 2 processes, outputAction summary_only, a run() that
returns df.index), beside plain pyarrow reading the same 1 MB pieces in a 2-process pool in
the same run, with and without the conversion to pandas that run() gets. Also the planning
time (record boundaries of the whole CSV, Parquet footers) and the cold-start floor: a fresh
interpreter importing pandas and pyarrow, which a warm pool has paid before its clock starts.

    python benchmarks/tabular_read.py [--megabytes 500] [--repeat 2]

The data is generated once into ~/.cache/parallelrunstep/bench ($PRS_BENCH_CACHE).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml
from bench_steps import time_prs_run
from cold_pyarrow import pool_tasks, time_pool

from prs_runner.execution.local_run import build_plan
from prs_runner.step.validation import load_step

MB = 1 << 20
ROWS_PER_CHUNK = 200_000
PARQUET_ROW_GROUP_ROWS = 4_096
SCRIPT = "def run(mini_batch):\n    return mini_batch.index\n"


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "parallelrunstep" / "bench"
    return Path(os.environ.get("PRS_BENCH_CACHE", default))


def chunk(rng: np.random.Generator, start: int, rows: int) -> pa.Table:
    """10 mixed columns; one text column sometimes holds a comma, so it is quoted."""
    brands = np.array(["acme", "globex", "initech", "umbrella", "hooli", "stark"])
    notes = np.array(["ok", "late delivery", "gift, wrapped", "returned", "", "promo, 10%"])
    days = np.datetime64("2015-01-01") + rng.integers(0, 3650, rows).astype("timedelta64[D]")
    return pa.table({
        "id": np.arange(start, start + rows, dtype=np.int64),
        "store": rng.integers(1, 200, rows),
        "brand": brands[rng.integers(0, len(brands), rows)],
        "day": pa.array(days),
        "units": rng.integers(0, 50, rows),
        "price": np.round(rng.random(rows) * 100, 2),
        "discount": np.round(rng.random(rows), 4),
        "online": rng.random(rows) < 0.3,
        "note": notes[rng.integers(0, len(notes), rows)],
        "score": rng.normal(size=rows),
    })


def generate(megabytes: int) -> tuple[Path, Path]:
    folder = cache_dir() / f"sales-{megabytes}mb"
    csv_path, parquet_path = folder / "csv" / "sales.csv", folder / "parquet" / "sales.parquet"
    if csv_path.exists() and parquet_path.exists():
        return csv_path, parquet_path
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    parquet_path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    rows = 0
    with pacsv.CSVWriter(str(csv_path) + ".tmp", chunk(rng, 0, 1).schema) as csv_writer, \
            pq.ParquetWriter(str(parquet_path) + ".tmp", chunk(rng, 0, 1).schema) as pq_writer:
        while os.path.getsize(str(csv_path) + ".tmp") < megabytes * MB:
            table = chunk(rng, rows, ROWS_PER_CHUNK)
            csv_writer.write_table(table)
            pq_writer.write_table(table, row_group_size=PARQUET_ROW_GROUP_ROWS)
            rows += ROWS_PER_CHUNK
    os.replace(str(csv_path) + ".tmp", csv_path)
    os.replace(str(parquet_path) + ".tmp", parquet_path)
    return csv_path, parquet_path


def write_step(root: Path, data: Path) -> Path:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "score.py").write_text(SCRIPT)
    document = {
        "apiVersion": "parallelrun.io/v1alpha1", "kind": "ParallelRunStep",
        "metadata": {"name": "bench-tabular"},
        "spec": {"code": {"entryScript": "score.py", "sourceDirectory": str(root / "src")},
                 "input": {"type": "tabular", "uri": str(data)},
                 "output": {"uri": str(root / "out")}, "miniBatchSize": "1MB",
                 "outputAction": "summary_only", "allowReuse": False,
                 "nodeCount": 1, "processCountPerNode": 2},
    }
    step = root / "step.yaml"
    step.write_text(yaml.safe_dump(document))
    return step


def time_prs_run_busy(step: Path) -> tuple[float, float]:
    """Wall time of a whole `prs run` as a user sees it, and the workers' busy time (the
    report's seconds per mini-batch: read, run(), commit), summed."""
    import csv

    elapsed = time_prs_run(step)
    with (step.parent / "out" / "_prs" / "report" / "processed_mini_batches.csv").open() as report:
        busy = sum(float(row["seconds"]) for row in csv.DictReader(report))
    return elapsed, busy


def time_cold_baseline(fmt: str, path: Path) -> float:
    import subprocess
    import sys

    started = time.perf_counter()
    script = Path(__file__).with_name("cold_pyarrow.py")
    subprocess.run([sys.executable, str(script), fmt, str(path)], check=True)
    return time.perf_counter() - started


def time_import_floor() -> float:
    """What any cold start pays before run() can get its first DataFrame: a fresh interpreter
    importing pandas and pyarrow. A warm pool has paid it before its clock starts."""
    import subprocess
    import sys

    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import pandas, pyarrow.csv, pyarrow.parquet"],
                   check=True)
    return time.perf_counter() - started


def compare(fmt: str, data: Path, folder: Path, repeat: int) -> None:
    step = write_step(folder / fmt, data.parent)
    started = time.perf_counter()
    plan = build_plan(load_step(step))
    planning = time.perf_counter() - started
    baselines: list[tuple[float, float, float, float]] = []
    prs_runs: list[tuple[float, float]] = []
    for _ in range(repeat):  # interleaved, so a change of the machine's load hits all alike
        baselines.append((time_pool(*pool_tasks(fmt, data, pandas=False))[0],
                          time_pool(*pool_tasks(fmt, data, pandas=True))[0],
                          time_cold_baseline(fmt, data), time_import_floor()))
        prs_runs.append(time_prs_run_busy(step))
    arrow, pandas, cold, floor = (min(b[i] for b in baselines) for i in range(4))
    prs, busy = min(prs_runs)
    mb = data.stat().st_size / MB
    print(f"{fmt}: {mb:.0f} MB, {len(plan.mini_batches)} mini-batches, "
          f"{plan.total_items} rows, planned in {planning:.2f} s")
    print(f"  prs run (1x2, 1MB, summary_only)    {mb / prs:7.1f} MB/s  ({prs:.2f} s)")
    print(f"  prs workers' busy time / 2          {mb / (busy / 2):7.1f} MB/s  "
          "(no planning, start-up, merge)")
    for name, seconds in (("pyarrow Pool(2), tables", arrow),
                          ("pyarrow Pool(2), to_pandas", pandas),
                          ("cold script: Pool(2), to_pandas", cold)):
        print(f"  {name:<35} {mb / seconds:7.1f} MB/s  ({seconds:.2f} s)  "
              f"ratio {prs / seconds:.2f}")
    print(f"  cold-start floor: a fresh interpreter importing pandas and pyarrow {floor:.2f} s; "
          f"prs run past it {prs - floor:.2f} s, ratio to the warm pool "
          f"{(prs - floor) / pandas:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=2, help="best of N for every number")
    args = parser.parse_args()
    csv_path, parquet_path = generate(args.megabytes)
    print(f"load before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        for fmt, data in (("csv", csv_path), ("parquet", parquet_path)):
            compare(fmt, data, Path(folder), args.repeat)
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
