"""A worker killed by SIGKILL while the container's memory cgroup counted an OOM kill is
reported as OOMKilled, with the limit; any other death stays WorkerDied."""

from __future__ import annotations

from pathlib import Path

import pytest

from prs_runner.execution.memory_kills import (
    MemoryCgroup,
    counter,
    limit_bytes,
    quantity,
    read_memory_cgroup,
    worker_death,
)

KILLED = "was killed by signal 9 (SIGKILL)"


def test_cgroup_v2_files(tmp_path: Path) -> None:
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\n"
                                            "oom_group_kill 0\n")
    (tmp_path / "memory.max").write_text("67108864\n")
    assert read_memory_cgroup(tmp_path) == MemoryCgroup(2, 64 << 20)
    (tmp_path / "memory.max").write_text("max\n")
    assert read_memory_cgroup(tmp_path) == MemoryCgroup(2, None)


def test_cgroup_v1_files(tmp_path: Path) -> None:
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("134217728\n")
    assert read_memory_cgroup(tmp_path) == MemoryCgroup(1, 128 << 20)
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert read_memory_cgroup(tmp_path) == MemoryCgroup(1, None)  # v1's "no limit"
    (tmp_path / "memory" / "memory.limit_in_bytes").unlink()
    assert read_memory_cgroup(tmp_path) == MemoryCgroup(1, None)


def test_no_memory_cgroup(tmp_path: Path) -> None:
    assert read_memory_cgroup(tmp_path) == MemoryCgroup(None, None)
    (tmp_path / "memory.events").write_text("oom 0\n")  # a kernel without the counter
    assert read_memory_cgroup(tmp_path) == MemoryCgroup(None, None)


def test_readers() -> None:
    assert counter("oom 3\noom_kill 4\n", "oom_kill") == 4
    assert counter("oom_kill_disable 0\n", "oom_kill") is None
    assert limit_bytes("max") is None
    assert limit_bytes("1048576\n") == 1 << 20
    assert [quantity(n) for n in (64 << 20, 3 << 30, 3072, 1536)] == [
        "64Mi", "3Gi", "3Ki", "1536 bytes"]


def test_a_sigkill_with_an_oom_kill_counted_is_out_of_memory() -> None:
    assert worker_death(KILLED, True, 0, MemoryCgroup(1, 64 << 20)) == {
        "type": "OOMKilled",
        "message": "worker process was killed by signal 9 (SIGKILL): the kernel's OOM killer "
                   "ended it, the container went over its memory limit of 64Mi"}
    assert worker_death(KILLED, True, 3, MemoryCgroup(4, None))["message"].endswith(
        "went over its memory limit")


@pytest.mark.parametrize(("status", "killed", "before", "now"), [
    (KILLED, True, 1, MemoryCgroup(1, 64 << 20)),  # killed by someone else (a timeout, a user)
    (KILLED, True, None, MemoryCgroup(1, None)),  # no counter to compare
    (KILLED, True, 0, MemoryCgroup(None, None)),
    ("exited with code 1", False, 0, MemoryCgroup(1, 64 << 20)),  # another process was killed
])
def test_any_other_death_is_a_worker_that_died(status: str, killed: bool, before: int | None,
                                                now: MemoryCgroup) -> None:
    assert worker_death(status, killed, before, now) == {
        "type": "WorkerDied", "message": f"worker process {status}"}
