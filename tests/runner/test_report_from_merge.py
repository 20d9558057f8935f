"""The run report the merge builds from the rows as it writes them is the page `prs report`
builds later from the CSV those rows went to: every status, retries, failures, timing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from tests.runner.conftest import MakeStep, StepDir

SCRIPT = """
import time
def run(mini_batch):
    time.sleep(0.02)
    number = int(mini_batch[0].rsplit("item", 1)[1].split(".")[0])
    if number % 10 == 4:
        raise ValueError(f"item {number} is bad")
    return list(mini_batch)
"""


@pytest.mark.parametrize(("settings", "statuses"), [
    # failures within the threshold, each tried twice
    ({"errorThreshold": -1, "runMaxTry": 2}, {"succeeded", "failed"}),
    # the first failure ends the step: the rest is never run
    ({"errorThreshold": 0, "runMaxTry": 1, "miniBatchSize": "1"},
     {"succeeded", "failed", "not_run"}),
])
def test_the_merges_page_is_the_page_prs_report_builds_from_its_rows(
    make_step: MakeStep, settings: dict[str, object], statuses: set[str]
) -> None:
    step = make_step(SCRIPT, files=60, nodeCount=1, processCountPerNode=2, **settings)
    step.run()
    rows = step.report_rows()
    assert len(rows) == int(step.job_result()["miniBatches"]["total"])
    assert statuses <= {row["status"] for row in rows}, rows
    assert_prs_report_rebuilds_the_page(step)


QUICK = """
def run(mini_batch):
    number = int(mini_batch[0].rsplit("item", 1)[1].split(".")[0])
    if number % 101 == 7:
        raise ValueError(f"item {number} is bad")
    return list(mini_batch)
"""


def test_a_page_gathered_over_many_chunks_of_rows_is_the_page_prs_report_builds(
        make_step: MakeStep) -> None:
    """Over 1,024 rows the merge gathers them a chunk at a time (merge.ROWS_CHUNK)."""
    from prs_runner.output.merge import ROWS_CHUNK

    files = 2 * ROWS_CHUNK + 300
    step = make_step(QUICK, files=files, miniBatchSize="1", processCountPerNode=2,
                     errorThreshold=-1, runMaxTry=2)
    step.run()
    rows = step.report_rows()
    assert len(rows) == files
    assert {row["status"] for row in rows} == {"succeeded", "failed"}
    assert {row["tries"] for row in rows} == {"1", "2"}
    assert_prs_report_rebuilds_the_page(step)


def assert_prs_report_rebuilds_the_page(step: StepDir) -> bytes:
    """The merge's page, checked to be what `prs report` builds again from the output."""
    page = step.out / "_prs/report/index.html"
    merged = page.read_bytes()
    page.unlink()
    rebuilt = subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.prs_cli", "report", str(step.out)],
        capture_output=True, text=True, timeout=60)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert page.read_bytes() == merged
    return merged


@pytest.mark.parametrize("surrogate", ["udcff", "ud800"])
def test_an_error_message_with_a_lone_surrogate_is_reported_not_fatal(
    make_step: MakeStep, surrogate: str
) -> None:
    """os.fsdecode of a file name that is not UTF-8 gives one; the merge, then the summary,
    once failed on it."""
    script = f'def run(mini_batch):\n    raise ValueError("bad \\{surrogate} name")\n'
    step = make_step(script, files=4, errorThreshold=-1, runMaxTry=1)
    done = step.run()
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"first error: ValueError: bad \\{surrogate} name" in done.stdout
    assert {row["error"] for row in step.report_rows()} == {
        f"ValueError: bad \\{surrogate} name"}
    assert f"bad \\{surrogate} name".encode() in assert_prs_report_rebuilds_the_page(step)


def forge_first_line(index: Path, change: dict[str, object]) -> None:
    """Rewrite the index's first line with CHANGE, under a checksum that holds (a writer
    other than a worker)."""
    lines = index.read_bytes().splitlines(keepends=True)
    fields = {**json.loads(lines[0][9:]), **change}
    body = json.dumps(fields, separators=(",", ":")).encode()
    lines[0] = b"%08x %s\n" % (zlib.crc32(body), body)
    index.write_bytes(b"".join(lines))


@pytest.mark.parametrize(("change", "drawn"), [
    ({"tries": None}, False), ({"started": "x"}, False), ({"seconds": float("nan")}, False),
    ({"seconds": "0.5"}, True),  # the CSV's "0.5" is a number to the page that reads it back
])
def test_a_record_the_page_cannot_use_costs_the_page_not_the_merge(
    make_step: MakeStep, change: dict[str, object], drawn: bool
) -> None:
    step = make_step("def run(mini_batch):\n    return list(mini_batch)\n", files=10,
                     nodeCount=1, processCountPerNode=1)
    assert step.run().returncode == 0
    lines = step.output_lines()
    (index,) = (step.out / "_prs/commits").glob("*.idx")  # one worker: one life
    forge_first_line(index, change)
    (step.out / "parallel_run_step.txt").unlink()  # merged again from the same commits
    again = step.run()
    assert again.returncode == 0, again.stderr
    assert step.job_result()["status"] == "Succeeded"
    assert step.output_lines() == lines
    assert "Traceback" not in again.stderr
    page = step.out / "_prs/report/index.html"
    if drawn:
        assert page.exists() and not again.stderr
    else:
        assert not page.exists()  # not the earlier run's
        assert "the HTML run report" in again.stderr and "could not be written" in again.stderr


FAIL_ONCE = """
import os, time
def run(mini_batch):
    if os.path.exists(os.path.join(os.path.dirname(__file__), "..", "fail")):
        raise ValueError("failed on purpose")
    mark("ran")
    time.sleep(60)
    return list(mini_batch)
"""


def test_a_resume_killed_before_its_merge_leaves_no_earlier_page(make_step: MakeStep) -> None:
    step = make_step(FAIL_ONCE, files=10, errorThreshold=0)
    (step.root / "fail").touch()
    assert step.run().returncode != 0
    page = step.out / "_prs/report/index.html"
    assert step.job_result()["status"] == "Failed" and page.exists()
    (step.root / "fail").unlink()
    run = step.start()  # the same step: it resumes, and its result is not known yet
    deadline = time.monotonic() + 60
    while not step.marks("ran") and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert not (step.out / "_prs/report/job_result.json").exists()
    assert not page.exists()  # the failed run's page would say it is the result
