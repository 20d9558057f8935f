"""One run per output: a second `prs run` on the same output refuses at once, naming the
holder; a dead holder's lock is taken over; the output stays exactly once and in order."""

from __future__ import annotations

import os
import signal
import socket
import time

from tests.runner.conftest import MakeStep, StepDir

SLOW_ECHO = """
import os, time
def run(mini_batch):
    mark("calls", len(mini_batch))
    time.sleep(0.3)
    return [os.path.basename(p) + " " + open(p).read().strip() for p in mini_batch]
"""
EXPECTED = [f"item{i:04d}.txt {i}" for i in range(12)]


def wait_until_running(step: StepDir, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not step.marks("calls"):
        assert time.monotonic() < deadline, "the first run never started a mini-batch"
        time.sleep(0.05)


def test_a_second_run_refuses_at_once_naming_the_holder(make_step: MakeStep) -> None:
    step = make_step(SLOW_ECHO, files=12, miniBatchSize="2")
    first = step.start()
    wait_until_running(step)
    started = time.monotonic()
    second = step.run("--set", "runMaxTry=2")  # other parameters, same output
    assert time.monotonic() - started < 10  # refused at once, not after waiting
    assert second.returncode == 2
    message = second.stderr.strip()
    assert message.startswith(f"prs run: output {step.out} is in use by pid {first.pid} "
                              f"on {socket.gethostname()}, running since ")
    assert "Traceback" not in second.stderr
    assert first.wait(timeout=120) == 0
    assert step.output_lines() == EXPECTED
    assert step.job_result()["items"]["succeeded"] == 12


def test_the_lock_of_a_killed_run_is_taken_over(make_step: MakeStep) -> None:
    step = make_step(SLOW_ECHO, files=12, miniBatchSize="2")
    first = step.start()
    wait_until_running(step)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    rerun = step.run()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert step.output_lines() == EXPECTED


def test_fresh_keeps_the_lock_file_it_holds(make_step: MakeStep) -> None:
    step = make_step(SLOW_ECHO, files=4, miniBatchSize="2")
    assert step.run().returncode == 0
    lock = step.out / "_prs/lock"
    inode = lock.stat().st_ino
    assert step.run("--fresh").returncode == 0
    assert lock.stat().st_ino == inode  # the same file: never deleted while held
    assert step.output_lines() == EXPECTED[:4]


def test_the_lock_file_is_never_followed_through_a_symlink(make_step: MakeStep) -> None:
    step = make_step(SLOW_ECHO, files=4, miniBatchSize="2")
    victim = step.root / "victim.txt"
    victim.write_text("keep me\n")
    (step.out / "_prs").mkdir(parents=True)
    (step.out / "_prs/lock").symlink_to(victim)
    result = step.run()
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"prs run: {step.out}/_prs/lock: Too many levels of symbolic links; a symbolic link "
        "is in the way; the runner never writes through one")
    assert victim.read_text() == "keep me\n"
