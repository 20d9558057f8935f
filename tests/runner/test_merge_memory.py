"""The merge streams: its memory does not grow with the size of the output."""

from __future__ import annotations

import subprocess
import sys

from tests.runner.conftest import MakeStep

BIG = """
def run(mini_batch):
    return ["x" * 999] * 4000 * len(mini_batch)  # about 4 MB of output per item
"""


def test_merge_memory_is_bounded_by_a_chunk_not_the_output(make_step: MakeStep) -> None:
    step = make_step(BIG, files=60, miniBatchSize="1", processCountPerNode=2)
    result = step.run()
    assert result.returncode == 0, result.stderr
    output = step.out / "parallel_run_step.txt"
    assert output.stat().st_size == 60 * 4000 * 1000

    measure = (
        # VmHWM is this process's own peak; ru_maxrss would include pytest's size at fork.
        "import sys\n"
        "from prs_runner.shard_cli import main\n"
        "code = main(['merge', '--plan', sys.argv[1]])\n"
        "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
        "print(int(status.split()[0]))\n"
        "sys.exit(code)\n"
    )
    merge = subprocess.run(
        [sys.executable, "-c", measure, str(step.out / "_prs/plan.json")],
        capture_output=True, text=True,
    )
    assert merge.returncode == 0, merge.stderr
    peak_kib = int(merge.stdout.split()[-1])
    assert output.stat().st_size == 60 * 4000 * 1000
    # 240 MB of output; the merge process stays far below that (Python itself is ~30 MB)
    assert peak_kib < 100 * 1024, peak_kib
