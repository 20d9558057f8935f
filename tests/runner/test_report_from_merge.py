"""The run report the merge builds from the rows as it writes them is the page `prs report`
builds later from the CSV those rows went to: every status, retries, failures, timing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.runner.conftest import MakeStep

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
    page = step.out / "_prs/report/index.html"
    merged = page.read_bytes()
    page.unlink()
    rebuilt = subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.prs_cli", "report", str(step.out)],
        capture_output=True, text=True, timeout=60)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert page.read_bytes() == merged
