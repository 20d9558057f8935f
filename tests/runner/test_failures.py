"""Retries, timeouts, init failures and the three thresholds (docs/contract.md §3)."""

from __future__ import annotations

import re
import time

import pytest

from tests.runner.conftest import MakeStep

FAIL_ITEMS_LISTED = """
def run(mini_batch):
    mark("calls")
    if any(p.endswith(BAD) for p in mini_batch):
        raise ValueError("cannot score " + mini_batch[0].rsplit("/", 1)[-1])
    return mini_batch
"""


def failing(suffixes: tuple[str, ...]) -> str:
    return f"BAD = {suffixes!r}\n" + FAIL_ITEMS_LISTED


def test_retry_then_success(make_step: MakeStep) -> None:
    step = make_step("""
import os
def run(mini_batch):
    flag = mini_batch[0] + ".tried"
    if not os.path.exists(flag):
        open(flag, "w").close()
        raise RuntimeError("first try fails")
    return mini_batch
""", files=4, input={"type": "files", "uri": "./data", "glob": "*.txt"})
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert step.job_result()["items"]["succeeded"] == 4
    assert [r["tries"] for r in step.report_rows()] == ["2", "2"]


def test_always_failing_mini_batch_is_tried_run_max_try_times(make_step: MakeStep) -> None:
    step = make_step(failing(("item0002.txt",)), files=6, runMaxTry=4)
    result = step.run()
    assert result.returncode == 0, result.stderr  # thresholds are -1 by default
    rows = step.report_rows()
    assert rows[1]["status"] == "failed" and rows[1]["tries"] == "4"
    assert "ValueError: cannot score item0002.txt" in rows[1]["error"]
    assert len(step.marks("calls")) == 2 + 4
    job = step.job_result()
    assert job["miniBatches"]["failed"] == 1 and job["items"]["failed"] == 2
    assert len(step.output_lines()) == 4


def test_a_run_where_every_mini_batch_failed_fails_despite_minus_one_thresholds(
    make_step: MakeStep,
) -> None:
    step = make_step("def run(mini_batch):\n    raise KeyError('always')\n", files=6, runMaxTry=1)
    result = step.run()
    assert result.returncode == 1
    job = step.job_result()
    assert job["miniBatches"] == {"total": 3, "succeeded": 0, "failed": 3, "pending": 0}
    assert job["status"] == "Failed" and job["reason"] == "AllMiniBatchesFailed"
    assert "KeyError: 'always'" in job["message"]
    assert not (step.out / "parallel_run_step.txt").exists()


def test_the_merge_counts_each_mini_batch_once_against_the_thresholds(
    make_step: MakeStep,
) -> None:
    """The merge decides last, from the records it chose: what the shards counted while
    they ran may miss a threshold (an operator's Job can end before a pass reads their
    counts) or count a mini-batch two shards ran twice. A run within errorThreshold -1,
    merged again under errorThreshold 1: two failed items fail the step and no output is
    written; under 2 it succeeds."""
    import json
    import subprocess
    import sys

    step = make_step("def run(mini_batch):\n    return mini_batch[1:]\n", files=6,
                     miniBatchSize="3", nodeCount=2, errorThreshold=-1)
    assert step.run().returncode == 0
    plan = step.out / "_prs/plan.json"
    for limit, status in ((1, "Failed"), (2, "Succeeded")):
        document = json.loads(plan.read_text())
        document["step"]["errorThreshold"] = limit
        plan.write_text(json.dumps(document))
        (step.out / "parallel_run_step.txt").unlink(missing_ok=True)
        subprocess.run([sys.executable, "-m", "prs_runner.commands.runner_cli", "merge",
                        "--plan", str(plan)], check=True, capture_output=True, timeout=60)
        job = step.job_result()
        assert (job["status"], job["items"]["failed"]) == (status, 2)
        assert (step.out / "parallel_run_step.txt").exists() == (status == "Succeeded")
        if status == "Failed":
            assert job["reason"] == "ErrorThresholdExceeded"
            assert job["message"].startswith(
                "errorThreshold exceeded: 2 failed items > errorThreshold 1"), job["message"]


@pytest.mark.parametrize(
    ("limits", "needle"),
    [
        # Two shards can report a failure at the same moment, so the count may pass the
        # threshold by more than one.
        ({"errorThreshold": 3}, r"errorThreshold exceeded: [4-8] failed items > errorThreshold"),
        ({"miniBatchErrorThreshold": 1},
         r"miniBatchErrorThreshold exceeded: [234] failed mini-batches > miniBatchErrorThreshold"),
        ({"allowedFailedPercent": 2}, r"allowedFailedPercent exceeded: [34] of 100 mini-batches"),
    ],
)
def test_threshold_stops_the_run_promptly(
    make_step: MakeStep, limits: dict[str, int], needle: str
) -> None:
    script = """
import time
def run(mini_batch):
    mark("calls")
    if mini_batch[0].endswith(("item0000.txt", "item0002.txt", "item0004.txt", "item0006.txt")):
        raise ValueError("bad input " + mini_batch[0].rsplit("/", 1)[-1])
    time.sleep(0.05)
    return mini_batch
"""
    step = make_step(script, files=200, runMaxTry=1, nodeCount=2, processCountPerNode=2, **limits)
    result = step.run()
    assert result.returncode == 1
    job = step.job_result()
    assert job["status"] == "Failed" and job["reason"] == "ErrorThresholdExceeded"
    assert re.search(needle, job["message"])
    assert "ValueError: bad input item000" in job["message"]
    assert "ErrorThresholdExceeded" in result.stdout and re.search(needle, result.stdout)
    assert len(step.marks("calls")) < 60  # stopped long before the 100 mini-batches
    assert job["miniBatches"]["pending"] > 40
    assert not (step.out / "parallel_run_step.txt").exists()


def test_timeout_kills_the_worker_and_the_replacement_runs_init_again(make_step: MakeStep) -> None:
    step = make_step("""
import os, time
def init():
    mark("init")
def run(mini_batch):
    flag = mini_batch[0] + ".slow"
    if mini_batch[0].endswith("item0002.txt") and not os.path.exists(flag):
        open(flag, "w").close()
        time.sleep(60)
    return mini_batch
""", files=6, runInvocationTimeout=1, processCountPerNode=1,
       input={"type": "files", "uri": "./data", "glob": "*.txt"})
    started = time.monotonic()
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 20
    assert len(step.marks("init")) == 2
    rows = step.report_rows()
    assert rows[1]["tries"] == "2" and rows[1]["status"] == "succeeded"
    assert step.job_result()["items"]["succeeded"] == 6


def test_timeout_on_every_try_fails_the_mini_batch(make_step: MakeStep) -> None:
    step = make_step("""
import time
def run(mini_batch):
    if mini_batch[0].endswith("item0000.txt"):
        print("about to hang on", mini_batch[0])
        time.sleep(60)
    return mini_batch
""", files=4, runInvocationTimeout=1, runMaxTry=2)
    result = step.run()
    assert result.returncode == 0, result.stderr
    row = step.report_rows()[0]
    assert row["status"] == "failed" and row["tries"] == "2"
    assert "TimeoutError: run() did not return within runInvocationTimeout=1s" in row["error"]
    logs = "".join(p.read_text() for p in (step.out / "_prs/logs").rglob("*.log"))
    assert logs.count("about to hang on") == 2  # printed before the kill, not lost with it


def test_crashed_worker_is_replaced(make_step: MakeStep) -> None:
    step = make_step("""
import os, signal
def run(mini_batch):
    flag = mini_batch[0] + ".crashed"
    if mini_batch[0].endswith("item0000.txt") and not os.path.exists(flag):
        open(flag, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return mini_batch
""", files=4, input={"type": "files", "uri": "./data", "glob": "*.txt"})
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert step.report_rows()[0]["tries"] == "2"
    assert step.job_result()["items"]["succeeded"] == 4


def test_init_failure_fails_fast_with_the_traceback(make_step: MakeStep) -> None:
    step = make_step("""
def init():
    mark("init")
    raise FileNotFoundError("model.pkl is missing")
def run(mini_batch):
    return mini_batch
""", files=400, nodeCount=1, processCountPerNode=2)
    started = time.monotonic()
    result = step.run()
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    job = step.job_result()
    assert job["reason"] == "InitFailed"
    assert job["message"].startswith("init() failed in every worker: FileNotFoundError: "
                                     "model.pkl is missing at score.py:")
    assert job["message"].endswith(" in init")
    assert 'in init\n    raise FileNotFoundError' in job["firstError"]["traceback"]
    assert len(step.marks("init")) == 6  # 2 workers x 3 tries


@pytest.mark.parametrize(("code", "expected"), [
    ("import scoring_library_not_installed", "ModuleNotFoundError: No module named"),
    ("from os import no_such_name", "ImportError: cannot import name 'no_such_name'"),
    ("exec('def broken(:')", "SyntaxError: "),
    ("from azureml.core import Workspace", "NotProvidedError: azureml.core.Workspace"),
], ids=["missing-module", "missing-name", "syntax", "azure-name-not-provided"])
def test_an_init_that_cannot_import_is_not_tried_again(
    make_step: MakeStep, code: str, expected: str
) -> None:
    """A fresh process would fail the same way: each worker tries once, not three times."""
    step = make_step(f"""
def init():
    mark("init")
    {code}
def run(mini_batch):
    return mini_batch
""", files=40, nodeCount=1, processCountPerNode=2)
    result = step.run()
    assert result.returncode == 1
    job = step.job_result()
    assert job["reason"] == "InitFailed"
    assert expected in job["message"]
    assert len(step.marks("init")) == 2  # one try per worker


def test_fewer_results_than_files_say_why_the_items_failed(make_step: MakeStep) -> None:
    step = make_step("def run(mini_batch):\n    return mini_batch[:3]\n", files=5,
                     miniBatchSize="5")
    result = step.run()
    assert result.returncode == 0, result.stderr
    job = step.job_result()
    assert job["items"] == {"total": 5, "succeeded": 3, "failed": 2}
    row = step.report_rows()[0]
    assert row["failed"] == "2"
    assert row["error"].startswith("FewerResults: run() returned 3 elements for 5 inputs: "
                                   "the other 2 count as failed")


def test_the_first_errors_traceback_is_in_job_result_and_failed_rows_say_where_they_ran(
    make_step: MakeStep,
) -> None:
    step = make_step("""
import time
def run(mini_batch):
    if mini_batch[0].endswith("item0002.txt"):
        time.sleep(0.2)
        raise ValueError("cannot score " + mini_batch[0][-12:])
    return mini_batch
""", files=4, runMaxTry=2, processCountPerNode=2)
    result = step.run()
    assert result.returncode == 0, result.stderr
    job = step.job_result()
    first = job["firstError"]
    assert (first["type"], first["message"], first["miniBatch"]) == (
        "ValueError", "cannot score item0002.txt", 1)
    assert first["traceback"].endswith("ValueError: cannot score item0002.txt\n")
    assert 'score.py", line ' in first["traceback"]
    failed = [r for r in step.report_rows() if r["status"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["process"] in ("0", "1")  # the worker that ran the last try
    assert failed[0]["tries"] == "2"
    assert float(failed[0]["seconds"]) >= 0.2


def test_a_mini_batch_waiting_for_its_next_try_when_a_threshold_stops_the_step_says_so(
    make_step: MakeStep,
) -> None:
    """One worker holds mini-batches 0-3: 0 fails its first try and waits for the next, 1
    returns nothing (a failed item: errorThreshold 0 is crossed), so the step stops with 0
    tried once: its row says so, with the worker and the error, not "not_run"."""
    step = make_step("""
def run(mini_batch):
    if mini_batch[0].endswith("item0000.txt"):
        raise ValueError("not yet")
    return [] if mini_batch[0].endswith("item0001.txt") else mini_batch
""", files=6, miniBatchSize="1", processCountPerNode=1, runMaxTry=3, errorThreshold=0)
    result = step.run()
    assert result.returncode == 1
    assert step.job_result()["reason"] == "ErrorThresholdExceeded"
    rows = {row["id"]: row for row in step.report_rows()}
    first = rows["0"]
    assert (first["status"], first["process"], first["tries"], first["error"]) == (
        "stopped", "0", "1", "ValueError: not yet")
    assert rows["1"]["error"].startswith("FewerResults: run() returned 0 elements for 1 inputs")


def test_shards_stopped_by_another_shards_threshold_keep_their_report(
    make_step: MakeStep,
) -> None:
    """Shard 0 crosses miniBatchErrorThreshold 0; `prs run` stops shard 1 in the middle of
    a mini-batch: the job result still has the first error's traceback, and shard 1's
    running mini-batch is `stopped`, not `not_run`."""
    step = make_step("""
import time
def run(mini_batch):
    if mini_batch[0].endswith("item0000.txt"):
        time.sleep(0.5)
        raise ValueError("bad item")
    time.sleep(3)
    return mini_batch
""", files=4, miniBatchSize="1", nodeCount=2, processCountPerNode=1, runMaxTry=1,
        miniBatchErrorThreshold=0)
    result = step.run()
    assert result.returncode == 1
    job = step.job_result()
    assert job["reason"] == "ErrorThresholdExceeded"
    assert job["firstError"]["type"] == "ValueError"
    assert "raise ValueError" in job["firstError"]["traceback"]
    rows = {row["id"]: row for row in step.report_rows()}
    assert rows["0"]["status"] == "failed"
    stopped = [(r["shard"], r["process"], r["tries"]) for r in rows.values()
               if r["status"] == "stopped"]
    assert ("1", "0", "1") in stopped  # shard 0 may have started its next one too
    assert {r["status"] for r in rows.values()} <= {"failed", "stopped", "not_run"}


def test_entry_script_without_run_is_reported(make_step: MakeStep) -> None:
    step = make_step("def score(batch):\n    return batch\n", files=2)
    result = step.run()
    assert result.returncode == 1
    assert "defines no run(mini_batch) function" in step.job_result()["message"]


def test_exception_message_names_mini_batch_and_items(make_step: MakeStep) -> None:
    step = make_step(failing(("item0004.txt",)), files=6, runMaxTry=1, miniBatchErrorThreshold=0)
    result = step.run()
    assert result.returncode == 1
    message = step.job_result()["message"]
    assert "ValueError: cannot score item0004.txt in mini-batch 2" in message
    assert "item0004.txt, " in message and "item0005.txt" in message


def test_an_init_that_exits_the_process_reports_its_exit_code(make_step: MakeStep) -> None:
    step = make_step("import os\ndef init():\n    os._exit(3)\ndef run(mini_batch):\n"
                     "    return mini_batch\n", files=2)
    result = step.run()
    assert result.returncode == 1
    job = step.job_result()
    assert job["reason"] == "InitFailed"
    assert job["message"] == ("init() failed in every worker: WorkerDied: worker process "
                              "exited with code 3")


@pytest.mark.parametrize(("body", "expected"), [
    ("sys.exit(4)", "SystemExit: 4"),
    ("raise KeyboardInterrupt", "KeyboardInterrupt: "),
])
def test_sys_exit_and_keyboard_interrupt_in_run_report_their_type(
    make_step: MakeStep, body: str, expected: str
) -> None:
    step = make_step(f"import sys\ndef run(mini_batch):\n    {body}\n", files=2,
                     runMaxTry=1)
    result = step.run()
    assert result.returncode == 1
    job = step.job_result()
    assert job["reason"] == "AllMiniBatchesFailed"
    assert f"first error: {expected} in mini-batch 0" in job["message"]
    assert step.report_rows()[0]["error"] == expected
