"""Object storage throughput on a real S3 server (SeaweedFS on loopback), beside plain code
doing the same reads in the same run:

- tabular: the 500 MB CSV of tabular_read.py and its Parquet copy, `prs run` (1 node x 2
  processes, 1 MB mini-batches, a no-op run()) against plain pyarrow reading the same 1 MB
  pieces from the same objects in a 2-process pool, to pandas as run() gets them;
- files: N objects of ~100 KB, `prs run` with a no-op run() (1 node x 2 processes) against a
  plain threaded download loop with the same total concurrency (2 x 8 threads);
- the object-store requests each run made (job_result.json storageRequests);
- the CPU each side used, the server's and the clients', and what one commit-sized PUT costs
  the server: on a small machine the server shares the cores with the step, so a request
  the baseline does not make (a commit per mini-batch, the planning scan) costs time.

    python benchmarks/storage_throughput.py [--megabytes 500] [--objects 10000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml
from cold_pyarrow import MB, row_group_runs, to_pandas
from tabular_read import generate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.storage_servers import StorageServer, start_server  # noqa: E402

DOWNLOAD_THREADS = 8  # a worker's downloads at a time (prs_runner.storage.download_cache)
OBJECT_BYTES = 100 * 1024


def upload(server: StorageServer, local: Path, key: str) -> None:
    filesystem = server.filesystem()
    with local.open("rb") as source, filesystem.open_output_stream(f"prs-test/{key}") as target:
        while block := source.read(8 * MB):
            target.write(block)


def upload_objects(server: StorageServer, count: int) -> None:
    filesystem = server.filesystem()
    payload = os.urandom(OBJECT_BYTES)

    def put(number: int) -> None:
        with filesystem.open_output_stream(f"prs-test/files/{number % 100:02d}/"
                                           f"obj{number:06d}.bin") as target:
            target.write(payload)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))


class CpuMeter:
    """Wall time, and the CPU seconds the server and this process with its children used."""

    def __init__(self, server: StorageServer) -> None:
        self.server = server

    def __enter__(self) -> CpuMeter:
        self.wall, self.server_cpu, self.client_cpu = time.perf_counter(), \
            self.server.cpu_seconds(), client_cpu()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.server_cpu = self.server.cpu_seconds() - self.server_cpu
        self.client_cpu = client_cpu() - self.client_cpu

    def __str__(self) -> str:
        return (f"{self.wall:5.1f} s (cpu: server {self.server_cpu:4.1f} s, "
                f"clients {self.client_cpu:4.1f} s)")


def client_cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), \
        resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def put_cost(server: StorageServer, count: int = 200) -> float:
    """Server CPU milliseconds per PUT of a small object (a mini-batch's commit record)."""
    filesystem = server.filesystem()
    started = server.cpu_seconds()
    for number in range(count):
        with filesystem.open_output_stream(f"prs-test/put-cost/{number:04d}") as target:
            target.write(b"r" * 300)
    return (server.cpu_seconds() - started) * 1000 / count


def write_step(root: Path, server: StorageServer, spec: dict[str, Any]) -> Path:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "score.py").write_text(
        "def run(mini_batch):\n    return list(range(len(mini_batch)))\n")
    document = {"apiVersion": "parallelrun.io/v1alpha1", "kind": "ParallelRunStep",
                "metadata": {"name": "bench-storage"},
                "spec": {"code": {"entryScript": "score.py", "sourceDirectory": str(root / "src")},
                         "outputAction": "summary_only", "allowReuse": False,
                         "nodeCount": 1, "processCountPerNode": 2, **spec}}
    step = root / "step.yaml"
    step.write_text(yaml.safe_dump(document))
    return step


def time_prs(step: Path, server: StorageServer, output: str) -> tuple[CpuMeter, dict[str, int]]:
    with CpuMeter(server) as elapsed:
        subprocess.run([sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(step),
                        "--fresh"], env={**os.environ, **server.env}, check=True,
                       stdout=subprocess.DEVNULL)
    filesystem = server.filesystem()
    with filesystem.open_input_stream(f"prs-test/{output}/_prs/report/job_result.json") as f:
        report = json.loads(f.read())
    return elapsed, report["storageRequests"]


# ---- the baselines: plain pyarrow and a plain download loop ------------------------------

ENV: dict[str, str] = {}


def s3() -> Any:
    os.environ.update(ENV)
    from pyarrow import fs as pafs

    from prs_runner.storage.object_stores import s3_options  # the same client settings
    return pafs.S3FileSystem(**s3_options(os.environ))


def read_csv_piece(task: tuple[str, int, int, bytes]) -> int:
    key, start, end, header = task
    with s3().open_input_file(key) as stream:
        data = header + stream.read_at(end - start, start)
    table = pacsv.read_csv(pa.py_buffer(data), read_options=pacsv.ReadOptions(use_threads=False))
    return len(to_pandas(table))


def read_groups(task: tuple[str, list[int]]) -> int:
    key, groups = task
    with s3().open_input_file(key) as stream:
        table = pq.ParquetFile(stream).read_row_groups(groups, use_threads=False)
    return len(to_pandas(table))


def pool_time(function: Any, tasks: list[Any], server: StorageServer) -> CpuMeter:
    with CpuMeter(server) as elapsed, \
            multiprocessing.Pool(2, initializer=ENV.update, initargs=(server.env,)) as pool:
        sum(pool.imap(function, tasks))
        pool.close()
        pool.join()  # the workers' CPU is counted once they are waited for
    return elapsed


def csv_pieces(local: Path, key: str) -> list[tuple[str, int, int, bytes]]:
    """The same 1 MB line-aligned pieces, found on the local copy (the data has no quoted
    newlines), read from the object."""
    tasks, total = [], local.stat().st_size
    with local.open("rb") as stream:
        header = stream.readline()
        start = len(header)
        while start < total:
            stream.seek(min(start + MB, total))
            stream.readline()
            end = min(stream.tell(), total)
            tasks.append((key, start, end, header))
            start = end
    return tasks


def download_loop(server: StorageServer, count: int) -> CpuMeter:
    filesystem = server.filesystem()
    keys = [f"prs-test/files/{n % 100:02d}/obj{n:06d}.bin" for n in range(count)]
    folder = tempfile.mkdtemp(prefix="bench-downloads-")

    def get(key: str) -> int:
        with filesystem.open_input_stream(key) as stream, \
                open(os.path.join(folder, key.replace("/", "_")), "wb") as target:
            return target.write(stream.read())

    try:
        with CpuMeter(server) as elapsed, ThreadPoolExecutor(2 * DOWNLOAD_THREADS) as pool:
            list(pool.map(get, keys))
        return elapsed
    finally:
        shutil.rmtree(folder)  # a gigabyte of copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=500)
    parser.add_argument("--objects", type=int, default=10_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    try:
        run_all(root, args.megabytes, args.objects)
    finally:
        shutil.rmtree(root)  # the server's data: about 2 GB


def run_all(root: Path, megabytes: int, objects: int) -> None:
    csv_path, parquet_path = generate(megabytes)
    with start_server("s3", root / "server") as server:
        upload(server, csv_path, "tabular/csv/sales.csv")
        upload(server, parquet_path, "tabular/parquet/sales.parquet")
        upload_objects(server, objects)
        print(f"tabular: {csv_path.stat().st_size / MB:.0f} MB CSV, "
              f"{parquet_path.stat().st_size / MB:.0f} MB Parquet; files: {objects} "
              f"objects of {OBJECT_BYTES // 1024} KB, on SeaweedFS (S3); "
              f"a small PUT costs the server {put_cost(server):.1f} ms of CPU")
        for fmt, local, key in (("csv", csv_path, "tabular/csv/sales.csv"),
                                ("parquet", parquet_path, "tabular/parquet/sales.parquet")):
            step = write_step(root / fmt, server, {
                "input": {"type": "tabular", "uri": server.uri(f"tabular/{fmt}")},
                "output": {"uri": server.uri(f"out-{fmt}")}, "miniBatchSize": "1MB"})
            prs_time, requests = time_prs(step, server, f"out-{fmt}")
            if fmt == "csv":
                baseline = pool_time(read_csv_piece, csv_pieces(local, f"prs-test/{key}"),
                                     server)
            else:
                tasks = [(f"prs-test/{key}", g) for g in row_group_runs(local, MB)]
                baseline = pool_time(read_groups, tasks, server)
            print(f"{fmt:8s} prs run {prs_time}  plain pyarrow {baseline}  "
                  f"ratio {prs_time.wall / baseline.wall:.2f} "
                  f"(goal <= {1.25 if fmt == 'csv' else 1.15})  requests {requests}")
        step = write_step(root / "files", server, {
            "input": {"type": "files", "uri": server.uri("files")},
            "output": {"uri": server.uri("out-files")}, "miniBatchSize": "20"})
        prs_time, requests = time_prs(step, server, "out-files")
        loop = download_loop(server, objects)
        per_object = sum(requests.values()) / objects
        print(f"files    prs run {objects / prs_time.wall:6.0f} objects/s {prs_time}  "
              f"download loop {objects / loop.wall:6.0f} objects/s {loop}  "
              f"ratio {loop.wall / prs_time.wall:.2f} (goal >= 1.0)  "
              f"requests {requests} = {per_object:.2f} per object")


if __name__ == "__main__":
    main()
