"""The reuse pod on real output folders: the earlier step's result and rows are copied, and
the step's own HTML run report is written from them."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from pathlib import Path

import pytest

from prs_runner.commands.pod_phases import reuse_in_pod
from prs_runner.output.merge import REPORT_COLUMNS
from prs_runner.output.run_report_writer import REPORT_PAGE
from prs_runner.planning.plan import Plan
from prs_runner.planning.plan_store import write_plan

OUTPUT_TEXT = b"a.txt ok\n"
ROW = ["0", "0", "0", "1", "1", "1", "0", "0.5", "succeeded", "", "1767225600.5"]


def earlier_output(root: Path) -> Path:
    """A succeeded step's output, as its merge leaves it."""
    report = root / "_prs/report"
    report.mkdir(parents=True)
    with (report / "processed_mini_batches.csv").open("w", newline="") as stream:
        csv.writer(stream).writerows([REPORT_COLUMNS, ROW])
    (root / "parallel_run_step.txt").write_bytes(OUTPUT_TEXT)
    result = {"stepName": "earlier", "status": "Succeeded", "fingerprint": "sha256:f",
              "output": {"file": "parallel_run_step.txt", "rows": 1, "bytes": len(OUTPUT_TEXT),
                         "sha256": hashlib.sha256(OUTPUT_TEXT).hexdigest()}}
    (report / "job_result.json").write_text(json.dumps(result))
    return root


def planned_output(root: Path) -> str:
    """This step's output, with the plan its plan pod stored there."""
    plan_uri = str(root / "_prs/plan.json")
    write_plan(plan_uri, Plan("later", "sha256:f", "/in", 1, (), {"output": {"uri": str(root)}},
                              {}))
    return plan_uri


def test_a_reused_result_has_its_own_report(tmp_path: Path) -> None:
    source = earlier_output(tmp_path / "earlier")
    plan_uri = planned_output(tmp_path / "later")
    result = reuse_in_pod(plan_uri, str(source), "earlier")
    assert (result["stepName"], result["reusedFrom"]) == ("later", "earlier")
    page = (tmp_path / "later" / REPORT_PAGE).read_text()
    assert "<h1>later</h1>" in page and "Succeeded</span>" in page
    assert (tmp_path / "later/parallel_run_step.txt").read_bytes() == OUTPUT_TEXT


def test_a_report_that_cannot_be_written_leaves_the_reuse_as_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = earlier_output(tmp_path / "earlier")
    plan_uri = planned_output(tmp_path / "later")
    (tmp_path / "later" / REPORT_PAGE).mkdir(parents=True)  # a folder where the page goes
    with caplog.at_level(logging.WARNING):
        result = reuse_in_pod(plan_uri, str(source), "earlier")
    assert result["reusedFrom"] == "earlier"
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage().startswith(
        f"prs: the HTML run report {tmp_path / 'later' / REPORT_PAGE} could not be written: ")
    assert json.loads((tmp_path / "later/_prs/report/job_result.json").read_text())[
        "reusedFrom"] == "earlier"
