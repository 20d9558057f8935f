"""A full disk stops the run with one clear line and leaves nothing half-written; once there
is space, a rerun resumes and the output is exactly once and in order. Needs root (mount)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runner.conftest import MakeStep

BIG_LINES = """
import os
def run(mini_batch):
    return [os.path.basename(p) + " " + "x" * 20000 for p in mini_batch]
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "out"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount_point)],
                   check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_stops_cleanly_and_a_rerun_resumes(make_step: MakeStep,
                                                        small_disk: Path) -> None:
    step = make_step(BIG_LINES, files=30, miniBatchSize="2", processCountPerNode=2)
    assert step.out == small_disk
    result = step.run()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    text = result.stdout + result.stderr
    # Which write meets the full disk depends on timing: a worker's commit (the step fails
    # with OutputUnwritable and says which mini-batch), the shard's own outcome after its
    # last commit (the shard and prs run each say so), or the merge's report after it.
    # Either way: lines that say the disk is full and what to do, and nothing left
    # half-written.
    committed = ("(OutputUnwritable): cannot commit the result of mini-batch " in text
                 and ": No space left on device; free space or fix the output, then run "
                 "again" in text)
    full = "No space left on device; free some space, then run again to resume"
    merged = text == f"prs run: {full}\n"
    outcome = text == f"prs-runner shard: {full}\nprs run: {full}\n"
    assert committed or merged or outcome, text
    leftovers = [p.name for p in small_disk.rglob("*") if p.name.endswith((".partial", ".tmp"))]
    assert leftovers == []

    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
    rerun = step.run()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    names = [line.split(" ", 1)[0] for line in step.output_lines()]
    assert names == [f"item{i:04d}.txt" for i in range(30)]
