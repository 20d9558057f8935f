"""The merge streams: its memory does not grow with the size of the output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from tests.runner.conftest import MakeStep

BIG = """
def run(mini_batch):
    return ["x" * 999] * 4000 * len(mini_batch)  # about 4 MB of output per item
"""


BIG_FRAME = """
import pandas as pd
def run(mini_batch):
    return pd.DataFrame({"row": range(6000), "text": ["x" * 999] * 6000})  # about 6 MB
"""


def merge_peak_kib(plan: Path) -> int:
    """Run the merge again in a fresh process and return its own peak memory."""
    measure = (
        # VmHWM is this process's own peak; ru_maxrss would include pytest's size at fork.
        "import sys\n"
        "from prs_runner.commands.runner_cli import main\n"
        "code = main(['merge', '--plan', sys.argv[1]])\n"
        "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
        "print(int(status.split()[0]))\n"
        "sys.exit(code)\n"
    )
    merge = subprocess.run(
        [sys.executable, "-c", measure, str(plan)], capture_output=True, text=True,
    )
    assert merge.returncode == 0, merge.stderr
    return int(merge.stdout.split()[-1])


def test_merge_memory_is_bounded_by_a_chunk_not_the_output(make_step: MakeStep) -> None:
    step = make_step(BIG, files=60, miniBatchSize="1", processCountPerNode=2)
    result = step.run()
    assert result.returncode == 0, result.stderr
    output = step.out / "parallel_run_step.txt"
    assert output.stat().st_size == 60 * 4000 * 1000
    peak_kib = merge_peak_kib(step.out / "_prs/plan.json")
    assert output.stat().st_size == 60 * 4000 * 1000
    # 240 MB of output; the merge process stays far below that (Python itself is ~30 MB)
    assert peak_kib < 100 * 1024, peak_kib


def test_parquet_merge_memory_is_bounded_by_a_mini_batch(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("n\n" + "".join(f"{i}\n" for i in range(60)))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text(BIG_FRAME)
    document = {
        "apiVersion": "parallelrun.io/v1alpha1", "kind": "ParallelRunStep",
        "metadata": {"name": "big-parquet"},
        "spec": {"code": {"entryScript": "score.py", "sourceDirectory": "./src"},
                 "input": {"type": "tabular", "uri": "./data"}, "output": {"uri": "./out"},
                 "miniBatchSize": "1rows", "processCountPerNode": 2,
                 "appendRowFormat": "parquet"},
    }
    (tmp_path / "step.yaml").write_text(yaml.safe_dump(document))
    result = subprocess.run([sys.executable, "-m", "prs_runner.commands.prs_cli", "run",
                             str(tmp_path / "step.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    peak_kib = merge_peak_kib(tmp_path / "out/_prs/plan.json")
    output = pq.ParquetFile(tmp_path / "out/parallel_run_step.txt")
    assert output.metadata.num_rows == 60 * 6000
    # 360 MB of strings in Arrow; pyarrow and pandas themselves take about 100 MB
    assert peak_kib < 200 * 1024, peak_kib
