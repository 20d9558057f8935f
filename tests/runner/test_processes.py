"""The process plumbing under the shard supervisor, on real processes: a forked worker
leaves the objects it inherits to no collection of its own, and a stopped worker is seen to
exit as it exits, not at the next polling interval."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from prs_runner.execution.processes import exited_by, fork_worker, polled_exit, reap


def report_from_child(command_fd: int, event_fd: int) -> int:
    os.close(command_fd)
    os.write(event_fd, f"{gc.get_freeze_count()}\n".encode())
    return 0


def test_a_forked_worker_leaves_what_it_inherits_out_of_its_collections(
    tmp_path: Path
) -> None:
    inherited = [[index] for index in range(10_000)]  # young objects, as a shard has
    pid, commands, events = fork_worker(report_from_child, {}, str(tmp_path / "worker.log"))
    try:
        frozen = int(os.read(events, 100).decode())
    finally:
        os.close(commands)
        os.close(events)
    assert reap(pid) == "exited with code 0"
    assert frozen >= len(inherited)
    assert gc.get_freeze_count() == 0  # the supervisor itself collects as before


@pytest.mark.parametrize("wait", [exited_by, polled_exit], ids=["pidfd", "polled"])
def test_an_exit_is_seen_when_it_happens_and_a_live_child_at_the_deadline(
    wait: Callable[[int, float], bool]
) -> None:
    quick = subprocess.Popen([sys.executable, "-c", "pass"])
    started = time.monotonic()
    assert wait(quick.pid, started + 60)
    assert time.monotonic() - started < 30  # not at the deadline
    assert quick.wait(timeout=5) == 0  # left to be reaped by its parent

    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = time.monotonic()
        assert not wait(slow.pid, started + 0.3)
        assert time.monotonic() - started >= 0.3
    finally:
        slow.kill()
        slow.wait()
    assert wait(slow.pid, time.monotonic() + 60)  # reaped already: nothing to wait for
