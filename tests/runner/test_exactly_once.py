"""Exactly once, in order, resumable, reusable (docs/contract.md §4 and §5)."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from prs_runner.output.commit_index import chosen
from prs_runner.output.commit_log import read_commits
from prs_runner.storage.filesystem import Storage
from tests.runner.conftest import MakeStep, StepDir

SLOW_ECHO = """
import os, time
def run(mini_batch):
    mark("calls", os.path.basename(mini_batch[0]))
    time.sleep(DELAY)
    return [os.path.basename(p) for p in mini_batch]
"""


def slow(delay: float) -> str:
    return f"DELAY = {delay}\n" + SLOW_ECHO


def runner_processes(named: Path) -> dict[int, str]:
    """The runner's processes (`prs-runner`: supervisors, and their workers, forked with the
    same command line) whose command line names something under NAMED, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if str(named) in cmdline and "prs_runner.commands.runner_cli" in cmdline:
            found[int(entry.name)] = cmdline
    return found


def step_processes(step: StepDir) -> list[int]:
    """Supervisor and worker processes of this step (their command lines name its plan or,
    for the shard `prs` starts before it reads the step, the step file)."""
    return list(runner_processes(step.root))


def parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def worker_pids(step: StepDir) -> list[int]:
    """The step's processes whose parent is one of its shard supervisors (workers are forked
    from their supervisor, so they share its command line)."""
    pids = step_processes(step)
    return [p for p in pids if parent_of(p) in pids]


def committed(step: StepDir) -> int:
    """Mini-batches with a committed record (read as a resume reads them)."""
    return len(chosen(read_commits(Storage(str(step.out)))))


def wait_for(condition: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def kill_workers_while_it_runs(step: StepDir, seed: int, most: int, every: float) -> int:
    """Run the step, SIGKILL a random worker every EVERY seconds (MOST of them), and check
    it still succeeds; how many were killed."""
    run = step.start()
    kills, rng = 0, random.Random(seed)
    while run.poll() is None and kills < most:
        time.sleep(every)
        pids = worker_pids(step)
        if pids:
            try:
                os.kill(rng.choice(pids), signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                pass
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, out + err
    return kills


def test_sigkill_of_workers_never_loses_or_duplicates_a_result(make_step: MakeStep) -> None:
    step = make_step(slow(0.01), files=600, nodeCount=2, processCountPerNode=2, runMaxTry=10)
    kills = kill_workers_while_it_runs(step, seed=7, most=15, every=0.15)
    assert kills >= 5
    assert step.output_lines() == [f"item{i:04d}.txt" for i in range(600)]
    rows = step.report_rows()
    assert any(int(r["tries"]) > 1 for r in rows)
    assert step.job_result()["items"] == {"total": 600, "succeeded": 600, "failed": 0}


def test_killing_prs_run_leaves_no_worker_and_a_rerun_resumes(make_step: MakeStep) -> None:
    step = make_step(slow(0.05), files=240, nodeCount=2, processCountPerNode=2)
    run = step.start()
    wait_for(lambda: committed(step) >= 20)
    run.send_signal(signal.SIGKILL)
    run.wait()
    wait_for(lambda: not step_processes(step), timeout=10)
    done_before = committed(step)
    calls_before = len(step.marks("calls"))
    assert 20 <= done_before < 120

    result = step.run()
    assert result.returncode == 0, result.stderr
    rerun_calls = step.marks("calls")[calls_before:]
    assert len(rerun_calls) <= 120 - done_before + 4  # only what had not been committed
    assert step.output_lines() == [f"item{i:04d}.txt" for i in range(240)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_sigint_to_prs_run_stops_the_shards_says_so_and_a_rerun_resumes(
    make_step: MakeStep, sig: signal.Signals
) -> None:
    """`kill`, `timeout` or a cancelled CI job send SIGTERM to `prs` alone (it was killed by
    it, said nothing, and its shards wrote no outcome); Ctrl-C, SIGINT."""
    step = make_step(slow(0.05), files=240, nodeCount=2, processCountPerNode=2)
    run = step.start()
    wait_for(lambda: committed(step) >= 20)
    run.send_signal(sig)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 128 + sig
    word = "terminated (SIGTERM)" if sig == signal.SIGTERM else "interrupted"
    assert err.splitlines()[-1] == f"{word}: run `prs run` again to resume"
    assert "Traceback" not in err
    wait_for(lambda: not step_processes(step), timeout=10)
    assert sorted(p.name for p in (step.out / "_prs" / "shards").iterdir()) == [
        "0.json", "1.json"]  # each shard stopped and said where it was

    result = step.run()
    assert result.returncode == 0, result.stderr
    assert step.output_lines() == [f"item{i:04d}.txt" for i in range(240)]


def test_fresh_starts_over(make_step: MakeStep) -> None:
    step = make_step(slow(0), files=6)
    assert step.run().returncode == 0
    assert step.run("--fresh").returncode == 0
    assert len(step.marks("calls")) == 6
    assert len(step.output_lines()) == 6


def test_identical_rerun_is_reused_and_any_change_runs_again(make_step: MakeStep) -> None:
    step = make_step(slow(0), files=6)
    assert step.run().returncode == 0
    assert len(step.marks("calls")) == 3

    again = step.run()
    assert again.returncode == 0
    assert "reused the result of an earlier identical run" in again.stdout
    assert len(step.marks("calls")) == 3

    (step.root / "data" / "item0003.txt").write_text("changed input\n")
    assert step.run().returncode == 0
    assert len(step.marks("calls")) == 6

    with (step.root / "src" / "score.py").open("a") as script:
        script.write("\n# a change in the code\n")
    assert step.run().returncode == 0
    assert len(step.marks("calls")) == 9

    assert step.run("--set", "arguments=[--new]").returncode == 0
    assert len(step.marks("calls")) == 12

    assert step.run("--set", "allowReuse=false").returncode == 0
    assert len(step.marks("calls")) == 15


def test_different_node_count_reuses_the_same_result(make_step: MakeStep) -> None:
    step = make_step(slow(0), files=6)
    assert step.run().returncode == 0
    result = step.run("--set", "nodeCount=3")
    assert "reused" in result.stdout
    assert len(step.marks("calls")) == 3
