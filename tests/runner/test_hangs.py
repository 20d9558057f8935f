"""A hanging init(), run() or shutdown() never hangs the run, and nothing a script started
outlives it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from prs_runner.execution.local_run import STEP_FILE, cut_plan, survey_step
from prs_runner.output.commit_log import read_commits
from prs_runner.planning.plan_store import PLAN_FILE, write_plan
from prs_runner.step.validation import load_step
from prs_runner.storage.filesystem import Storage
from tests.runner.conftest import MakeStep, StepDir

ECHO_RUN = """
def run(mini_batch):
    return [p.rsplit("/", 1)[-1] for p in mini_batch]
"""


def test_a_hanging_init_fails_with_no_progress_naming_it(make_step: MakeStep) -> None:
    step = make_step("import time\ndef init():\n    time.sleep(3600)\n" + ECHO_RUN,
                     files=4, processCountPerNode=2, progressUpdateTimeout=3)
    started = time.monotonic()
    result = step.run(timeout=60)
    assert time.monotonic() - started < 30
    assert result.returncode == 1, result.stdout + result.stderr
    job = step.job_result()
    assert job["reason"] == "NoProgress"
    assert job["message"].startswith("no mini-batch finished in shard 0 for ")
    assert "(progressUpdateTimeout=3); process 0: in init(); process 1: in init()" in (
        job["message"])


def test_a_hanging_run_fails_with_no_progress_naming_the_mini_batch(make_step: MakeStep
                                                                    ) -> None:
    script = """
import time
def run(mini_batch):
    if any(p.endswith("item0002.txt") for p in mini_batch):
        time.sleep(3600)
    return [p.rsplit("/", 1)[-1] for p in mini_batch]
"""
    step = make_step(script, files=6, runInvocationTimeout=600, progressUpdateTimeout=3,
                     processCountPerNode=1)
    result = step.run(timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    job = step.job_result()
    assert job["reason"] == "NoProgress"
    assert "process 0: in run() of mini-batch 1 for " in job["message"]
    assert job["miniBatches"]["succeeded"] == 1  # mini-batch 0 finished before the hang


def test_a_hanging_shutdown_is_cut_short_and_the_run_succeeds(make_step: MakeStep) -> None:
    step = make_step("import time\ndef shutdown():\n    time.sleep(3600)\n" + ECHO_RUN,
                     files=4, runInvocationTimeout=2)
    started = time.monotonic()
    result = step.run(timeout=60)
    assert time.monotonic() - started < 20
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(step.output_lines()) == 4
    assert "shutdown() did not return within 2 s; killed" in result.stderr


def test_a_replacement_still_in_init_at_the_end_is_stopped_at_once(
    make_step: MakeStep, tmp_path: Path
) -> None:
    """A worker dies; the one started in its place is in a slow init() when the others
    finish the rest: the shard ends then (it waited runInvocationTimeout for that init() and
    a shutdown(), and said 'shutdown() did not return', though none was called)."""
    starts, crashed = tmp_path / "starts", tmp_path / "crashed"
    script = f"""
import os, time
def init():
    with open({str(starts)!r}, "a") as log:
        log.write("x")
    if os.path.getsize({str(starts)!r}) > 2:  # the third worker: a replacement
        time.sleep(3600)
def run(mini_batch):
    if any(p.endswith("item0001.txt") for p in mini_batch) and not os.path.exists({str(crashed)!r}):
        open({str(crashed)!r}, "w").close()
        os._exit(3)
    deadline = time.monotonic() + 30  # once crashed, not before its replacement is in init()
    while os.path.exists({str(crashed)!r}) and os.path.getsize({str(starts)!r}) < 3 and (
            time.monotonic() < deadline):
        time.sleep(0.01)
    time.sleep(0.1)
    return [p.rsplit("/", 1)[-1] for p in mini_batch]
"""
    step = make_step(script, files=12, processCountPerNode=2, runInvocationTimeout=30)
    started = time.monotonic()
    result = step.run(timeout=120)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert starts.read_text() == "xxx"  # the replacement was started
    assert step.output_lines() == [f"item{i:04d}.txt" for i in range(12)]
    assert "did not return" not in result.stderr
    assert took < 15, (took, result.stderr)


def test_a_first_worker_still_in_init_when_the_work_has_run_out_is_not_waited_for(
    make_step: MakeStep
) -> None:
    """Not only a replacement: a worker whose first init() outlasts the work the others ran
    is killed there, and its shutdown() is not called (docs/entry-script.md)."""
    script = """
import os, time
SLOW = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "marks",
                    "slow-init")
def init():
    if os.environ["PRS_PROCESS_INDEX"] == "1":
        mark("slow-init")
        time.sleep(3600)
def run(mini_batch):
    # Not before process 1 is in init(): killed before it got there, it would prove nothing.
    deadline = time.monotonic() + 30
    while not os.path.exists(SLOW) and time.monotonic() < deadline:
        time.sleep(0.01)
    return [p.rsplit("/", 1)[-1] for p in mini_batch]
def shutdown():
    mark("shutdown", os.environ["PRS_PROCESS_INDEX"])
"""
    step = make_step(script, files=12, processCountPerNode=2, runInvocationTimeout=30)
    started = time.monotonic()
    result = step.run(timeout=120)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert step.output_lines() == [f"item{i:04d}.txt" for i in range(12)]
    assert len(step.marks("slow-init")) == 1  # it was started, and was in init() at the end
    assert step.marks("shutdown") == ["0"]
    assert took < 15, (took, result.stderr)


def test_processes_started_by_run_end_with_their_worker(make_step: MakeStep) -> None:
    marker = f"prs-leftover-{uuid.uuid4().hex}"
    script = f"""
import subprocess, sys
def run(mini_batch):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "{marker}"])
    return [p.rsplit("/", 1)[-1] for p in mini_batch]
"""
    step = make_step(script, files=4, processCountPerNode=2)
    result = step.run()
    assert result.returncode == 0, result.stdout + result.stderr
    deadline = time.monotonic() + 5
    while (left := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == []


def processes_with(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                if marker.encode() in stream.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_a_step_past_active_deadline_seconds_stops_and_keeps_what_it_committed(
        make_step: MakeStep) -> None:
    script = """
import time
def run(mini_batch):
    mark("calls")
    time.sleep(0.5)
    return [p.rsplit("/", 1)[-1] for p in mini_batch]
"""
    # 40 mini-batches of 0.5 s in one process need 20 s; the deadline stops it at 3 s.
    step = make_step(script, files=40, miniBatchSize="1", activeDeadlineSeconds=3,
                     processCountPerNode=1)
    started = time.monotonic()
    result = step.run(timeout=60)
    assert time.monotonic() - started < 15
    assert result.returncode == 1, result.stdout + result.stderr
    job = step.job_result()
    assert job["reason"] == "DeadlineExceeded"
    assert job["message"].startswith("the step ran longer than activeDeadlineSeconds=3; ")
    done = job["miniBatches"]["succeeded"]
    assert 0 < done < 40
    # a runtime setting: raising it resumes the same results instead of starting over
    resumed = step.run("--set", "activeDeadlineSeconds=600")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert step.output_lines() == [f"item{i:04d}.txt" for i in range(40)]
    # only the mini-batch cut short at the deadline ran twice
    assert len(step.marks("calls")) <= 41


def test_a_run_that_holds_the_interpreter_after_quick_ones_is_the_one_named(
        make_step: MakeStep) -> None:
    """A worker holds the 'done's of its last quick mini-batches while its next run() runs
    (execution.committer), and has no thread to say them: before it gives up, the shard
    reads what the worker committed, and names the mini-batch that hangs, not one before."""
    script = """
import ctypes, time
def run(mini_batch):
    if any(p.endswith("item0030.txt") for p in mini_batch):
        ctypes.PyDLL(None).usleep(3_000_000_000)  # in C, holding the GIL: no thread runs
    time.sleep(0.002)
    return [p.rsplit("/", 1)[-1] for p in mini_batch]
"""
    step = make_step(script, files=40, miniBatchSize="1", runInvocationTimeout=600,
                     progressUpdateTimeout=3, processCountPerNode=1, runMaxTry=1)
    result = step.run(timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    job = step.job_result()
    assert job["reason"] == "NoProgress"
    assert "process 0: in run() of mini-batch 30 for " in job["message"], job["message"]
    assert job["miniBatches"]["succeeded"] == 30


def test_a_script_that_joins_every_thread_it_finds_does_not_hang(make_step: MakeStep) -> None:
    script = """
import threading
def run(mini_batch):
    threading.Thread(target=len, args=(mini_batch,)).start()
    for thread in threading.enumerate():
        if thread is not threading.main_thread():
            thread.join()
    return [p.rsplit("/", 1)[-1] for p in mini_batch]
"""
    step = make_step(script, files=20, miniBatchSize="1", runInvocationTimeout=20,
                     processCountPerNode=1, runMaxTry=1)
    result = step.run(timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(step.output_lines()) == 20


def test_a_try_timed_out_in_one_process_does_not_stop_a_shard_whose_other_one_progresses(
        make_step: MakeStep) -> None:
    """Reading what a timed-out worker committed moves the shard's last progress forward
    only: the other process's later progress stands."""
    script = """
import os, time
def run(mini_batch):
    number = int(mini_batch[0].rsplit("item", 1)[1].split(".")[0])
    marker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hung-once")
    if number == 1 and not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(60)
    elif number != 0:
        time.sleep(0.3)
    return [str(number)]
"""
    step = make_step(script, files=30, miniBatchSize="1", processCountPerNode=2, runMaxTry=3,
                     runInvocationTimeout=4, progressUpdateTimeout=3)
    result = step.run(timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(int(line) for line in step.output_lines()) == list(range(30))


def test_a_failed_try_after_quick_ones_is_timed_from_its_own_start(make_step: MakeStep) -> None:
    script = """
import time
def run(mini_batch):
    if mini_batch[0].endswith("item0002.txt"):
        time.sleep(1)
        raise ValueError("boom")
    return [mini_batch[0]]
"""
    step = make_step(script, files=6, miniBatchSize="1", processCountPerNode=1, runMaxTry=1,
                     errorThreshold=-1, miniBatchErrorThreshold=-1)
    step.run(timeout=60)
    rows = {int(row["id"]): row for row in step.report_rows()}
    assert rows[2]["status"] == "failed"
    assert 1.0 <= float(rows[2]["seconds"]) < 5.0
    assert float(rows[2]["started"]) < float(rows[3]["started"]) - 0.9


# Each worker's second mini-batch: process 1 is still in it when process 0's fails.
THRESHOLD_SCRIPT = """
import os, time
calls = 0
def run(mini_batch):
    global calls
    calls += 1
    if calls == 2:
        if os.environ["PRS_PROCESS_INDEX"] == "1":
            time.sleep(5)
        else:
            time.sleep(1)
            raise ValueError("boom")
    return [mini_batch[0]]
"""


def test_the_try_running_when_a_threshold_stops_the_shard_is_reported_stopped(
        make_step: MakeStep) -> None:
    """Not the one before it, whose 'done' its worker still held (it was committed)."""
    step = make_step(THRESHOLD_SCRIPT, files=12, miniBatchSize="1", processCountPerNode=2,
                     runMaxTry=1, miniBatchErrorThreshold=0)
    step.run(timeout=60)
    rows = step.report_rows()
    assert step.job_result()["reason"] == "ErrorThresholdExceeded"
    stopped = [row for row in rows if row["status"] == "stopped"]  # process 0's next too
    assert [row["tries"] for row in stopped if row["process"] == "1"] == ["1"]
    assert all(row["tries"] == "1" for row in stopped)



def test_a_shard_that_stops_on_its_own_reports_the_tries_its_workers_were_in(
        make_step: MakeStep) -> None:
    """As in a pod, where no `prs run` signals it: the shard crosses the threshold and stops
    its workers itself; the try the other worker was in is in its outcome, not lost with
    the queue the stop emptied (the merge would report that mini-batch 'not run')."""
    step = make_step(THRESHOLD_SCRIPT, files=12, miniBatchSize="1", processCountPerNode=2,
                     runMaxTry=1, miniBatchErrorThreshold=0)
    output, command = shard_alone(step)
    shard = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert shard.returncode != 0, shard.stderr
    outcome = json.loads(output.read_bytes("_prs/shards/0.json"))
    assert outcome["status"] == "failed"
    # Process 1's, in its 5 s sleep; process 0 may have been sent its next one too.
    assert [t["process"] for t in outcome["unfinished"].values()].count(1) == 1, outcome
    assert all(tries["tries"] == 1 for tries in outcome["unfinished"].values())


UNREAD_SCRIPT = """
import os, time
def run(mini_batch):
    number = int(open(mini_batch[0]).read())
    mark(f"in-{number}")
    if number == 0:
        while not os.path.exists(os.path.join(os.path.dirname(mini_batch[0]), "..", "go")):
            time.sleep(0.01)
    if number == 1:
        raise ValueError("boom")
    if number == 2:
        time.sleep(60)
    return [mini_batch[0]]
"""


def test_a_stopped_shard_reads_what_its_workers_said_before_it_says_where_they_were(
        make_step: MakeStep) -> None:
    """A worker goes on while its messages wait to be read: here it failed mini-batch 1
    and is in 2 while its shard, paused, has read nothing. Stopped then, the shard said
    the worker was in 1 (its failure unread) and 2, whose run() was running, 'not run'."""
    step = make_step(UNREAD_SCRIPT, files=6, miniBatchSize="1", processCountPerNode=1,
                     runMaxTry=1)
    output, command = shard_alone(step)
    shard = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    marks = step.root / "marks"
    try:
        wait_for(lambda: (marks / "in-0").exists(), 30)
        shard.send_signal(signal.SIGSTOP)  # reads nothing from here on
        (step.root / "go").write_text("")
        wait_for(lambda: (marks / "in-2").exists(), 30)
        shard.send_signal(signal.SIGTERM)
        shard.send_signal(signal.SIGCONT)
        assert shard.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        shard.kill()
        shard.wait()
    outcome = json.loads(output.read_bytes("_prs/shards/0.json"))
    assert outcome["status"] == "stopped"
    assert outcome["unfinished"] == {"2": {"tries": 1, "process": 0, "error": ""}}
    failed = [c.header for c in read_commits(output) if c.header.status == "failed"]
    assert [(h.id, h.tries, (h.error or {}).get("message")) for h in failed] == [(1, 1, "boom")]


def shard_alone(step: StepDir) -> tuple[Storage, list[str]]:
    """STEP planned into its output as `prs run` plans it, and the command that runs its
    shard 0 alone, as a pod does (no `prs run` to signal it)."""
    survey = survey_step(load_step(step.step))
    output = Storage(survey.spec["output"]["uri"])
    output.write_atomic(STEP_FILE, json.dumps(survey.spec).encode())
    write_plan(output.uri_of(PLAN_FILE), cut_plan(load_step(step.step), survey))
    return output, [sys.executable, "-m", "prs_runner.commands.runner_cli", "shard", "--plan",
                    output.uri_of(PLAN_FILE), "--index", "0"]


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
