"""The run report's writer on a real output folder: what it reads, where it writes, and that
a report it cannot write is said and never raised."""

from __future__ import annotations

import csv
import io
import json
import logging
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from prs_runner.output import run_report_writer
from prs_runner.output.merge import REPORT_COLUMNS
from prs_runner.output.run_report_writer import (
    LOG_LINE_CHARS,
    LOG_SCAN_BYTES,
    REPORT_PAGE,
    NoRunResults,
    build_run_report,
    job_problem,
    log_lines,
    read_job,
    read_outcomes,
    write_run_report,
    write_run_report_after_merge,
)
from prs_runner.storage.filesystem import Storage

FAILED_ROW = ["4", "0", "1", "2", "2", "0", "2", "0.05", "failed", "ValueError: four",
              "1767225600.5"]
LOG = """\
2026-12-02 13:12:24,001 INFO prs.worker [shard 0 process 1] ready
2026-12-02 13:12:24,697 ERROR prs.worker [shard 0 process 1] run() failed on mini-batch 4
Traceback (most recent call last):
ValueError: four
"""


def write_output(root: Path, rows: list[list[str]]) -> Storage:
    report = root / "_prs/report"
    report.mkdir(parents=True)
    with (report / "processed_mini_batches.csv").open("w", newline="") as stream:
        csv.writer(stream).writerows([REPORT_COLUMNS, *rows])
    (root / "_prs/logs/0").mkdir(parents=True)
    (root / "_prs/logs/0/1.log").write_text(LOG)
    return Storage(str(root))


def test_the_page_is_written_under_the_report_folder_with_the_logged_traceback(
    tmp_path: Path
) -> None:
    output = write_output(tmp_path, [FAILED_ROW])
    (tmp_path / "_prs/report/job_result.json").write_text(json.dumps({"stepName": "from-file"}))
    where = write_run_report(output)
    assert where == str(tmp_path / REPORT_PAGE)
    text = (tmp_path / REPORT_PAGE).read_text()
    assert "<h1>from-file</h1>" in text
    assert 'href="../logs/0/1.log">_prs/logs/0/1.log</a>, line 2' in text
    assert "ValueError: four</pre>" in text
    given = build_run_report(output, {"stepName": "given"}, [])
    assert "<h1>given</h1>" in given and "<h2>Shards</h2>" not in given


def test_a_missing_log_leaves_the_failure_without_its_traceback(tmp_path: Path) -> None:
    output = write_output(tmp_path, [FAILED_ROW])
    (tmp_path / "_prs/logs/0/1.log").unlink()
    text = build_run_report(output, {}, [])
    assert "(no traceback of this mini-batch found in it)" in text


def test_shard_outcomes_are_read_in_shard_order(tmp_path: Path) -> None:
    shards = tmp_path / "_prs/shards"
    shards.mkdir(parents=True)
    for index in (10, 2, 9):
        (shards / f"{index}.json").write_text(json.dumps({"shard": index}))
    (shards / "3.json").write_text("{torn")
    (shards / "4.json").write_text("[1]")
    (shards / "notes.txt").write_text("not an outcome")
    assert [o["shard"] for o in read_outcomes(Storage(str(tmp_path)))] == [2, 9, 10]


def test_each_planned_shard_is_shown_and_one_without_an_outcome_as_missing(
    tmp_path: Path
) -> None:
    from prs_runner.planning.plan import Plan
    from prs_runner.planning.plan_store import write_plan

    output = Storage(str(tmp_path))
    shards = tmp_path / "_prs/shards"
    shards.mkdir(parents=True)
    for index in (0, 2, 5):  # 5: beyond the plan's shards, as the merge leaves it out
        (shards / f"{index}.json").write_text(json.dumps({"shard": index, "status": "done"}))
    plan = Plan(step_name="s", fingerprint="f", input_uri="/in", node_count=3, mini_batches=())
    write_plan(output.uri_of("_prs/plan.json"), plan)
    assert read_outcomes(output) == [{"shard": 0, "status": "done"},
                                     {"shard": 1, "status": "missing"},
                                     {"shard": 2, "status": "done"}]
    (tmp_path / "_prs/plan.json").write_text('{"version": "torn')
    assert [o["shard"] for o in read_outcomes(output)] == [0, 2, 5]  # those found


@pytest.mark.parametrize(("content", "job"), [
    ('{"status": "Succeeded"}', {"status": "Succeeded"}), ("{torn", {}), ("[1]", {}), (None, {})])
def test_job_result_is_read_when_whole(tmp_path: Path, content: str | None,
                                       job: dict[str, str]) -> None:
    if content is not None:
        (tmp_path / "_prs/report").mkdir(parents=True)
        (tmp_path / "_prs/report/job_result.json").write_text(content)
    assert read_job(Storage(str(tmp_path))) == job


def test_an_output_without_results_says_what_it_lacks(tmp_path: Path) -> None:
    with pytest.raises(NoRunResults, match="holds no _prs/ folder: it is not a step's output"):
        build_run_report(Storage(str(tmp_path)))
    (tmp_path / "_prs/plan").mkdir(parents=True)
    with pytest.raises(NoRunResults, match=r"processed_mini_batches\.csv is missing: no run has "
                                           r"ended on this output yet"):
        build_run_report(Storage(str(tmp_path)))


@pytest.mark.parametrize("content", ["id,shard\n1,0\n", "\xff\xfe not text", REPORT_COLUMNS[0]
                                     + "," + ",".join(REPORT_COLUMNS[1:]) + "\nx,y\n"])
def test_a_csv_not_as_the_merge_writes_it_is_refused_in_one_line(
    tmp_path: Path, content: str
) -> None:
    (tmp_path / "_prs/report").mkdir(parents=True)
    (tmp_path / "_prs/report/processed_mini_batches.csv").write_bytes(
        content.encode("latin-1"))
    with pytest.raises(NoRunResults, match=r"is not as the merge writes it .*; run the step "
                                           r"again to write it anew"):
        build_run_report(Storage(str(tmp_path)))


@pytest.mark.parametrize(("field", "value", "why"), [
    ("seconds", "nan", "took nan seconds"),
    ("seconds", "inf", "took inf seconds"),
    ("seconds", "-1e300", r"took -1e\+300 seconds"),
    ("started", "nan", "started at nan, not a time"),
    ("started", "-inf", "started at -inf, not a time"),
    ("started", "-1e20", r"started at -1e\+20, not a time"),
    ("started", "2.5e11", "started at 250000000000.0, not a time"),
    ("id", str(2**63), "a number in it is too large"),
    ("tries", str(2**31), "a number in it is too large"),
])
def test_a_csv_value_the_page_cannot_place_is_refused_in_one_line(
    tmp_path: Path, field: str, value: str, why: str
) -> None:
    row = list(FAILED_ROW)
    row[REPORT_COLUMNS.index(field)] = value
    output = write_output(tmp_path, [row])
    with pytest.raises(NoRunResults, match=rf"is not as the merge writes it \(.*({why}).*\); "
                                           r"run the step again to write it anew$"):
        build_run_report(output, {}, [])


def test_a_csv_saved_again_by_a_spreadsheet_is_read(tmp_path: Path) -> None:
    """With a byte-order mark first and a blank last line."""
    output = write_output(tmp_path, [FAILED_ROW])
    rows = tmp_path / "_prs/report/processed_mini_batches.csv"
    rows.write_bytes(b"\xef\xbb\xbf" + rows.read_bytes() + b"\r\n")
    assert "ValueError: four</pre>" in build_run_report(output, {}, [])


def test_a_report_the_merge_cannot_write_takes_an_earlier_runs_page_away(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    output = write_output(tmp_path, [["x", *FAILED_ROW[1:]]])  # a row the page cannot read
    (tmp_path / REPORT_PAGE).write_text("an earlier run's page")
    with caplog.at_level(logging.WARNING):
        write_run_report_after_merge(output, {}, [])
    assert "NoRunResults" in caplog.records[0].getMessage()
    assert not (tmp_path / REPORT_PAGE).exists()


def test_a_report_the_merge_cannot_write_is_logged_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    output = write_output(tmp_path, [FAILED_ROW])
    (tmp_path / REPORT_PAGE).mkdir()  # a folder where the page goes
    with caplog.at_level(logging.WARNING):
        write_run_report_after_merge(output, {}, [])
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message.startswith(f"prs: the HTML run report {tmp_path / REPORT_PAGE} could not "
                              "be written: ")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        write_run_report_after_merge(Storage(str(tmp_path / "elsewhere")), {}, [])
    assert "NoRunResults" in caplog.records[0].getMessage()


def test_a_lone_surrogate_is_written_as_its_escape(tmp_path: Path) -> None:
    """os.fsdecode of a non-UTF-8 name gives one; the page shows it, and is written."""
    output = write_output(tmp_path, [FAILED_ROW])
    job = {"stepName": "s", "firstError": {"type": "RuntimeError", "message": "x \udcff"}}
    (tmp_path / "_prs/report/job_result.json").write_text(json.dumps(job))
    write_run_report(output)
    assert "RuntimeError</b>: x \\udcff</p>" in (tmp_path / REPORT_PAGE).read_text()


@pytest.mark.parametrize(("job", "problem"), [
    ({}, None),
    ({"startTime": 1767225600.5, "durationSeconds": 3, "output": {"rows": 0, "file": 1},
      "firstError": {"type": 1}, "status": ["any"]}, None),
    ({"startTime": None, "durationSeconds": None, "output": None, "firstError": None}, None),
    ({"startTime": 0, "durationSeconds": 0.0, "output": {"rows": None}}, None),
    ({"startTime": 2.4e11}, None),
    ({"startTime": "yesterday"}, 'startTime is "yesterday", not a number of seconds'),
    ({"startTime": True}, "startTime is true, not a number of seconds"),
    ({"startTime": -1}, "startTime is -1, not a number of seconds"),
    ({"startTime": 2.5e11}, "startTime is 250000000000.0, not a number of seconds"),
    ({"startTime": 1e400}, "startTime is Infinity, not a number of seconds"),
    ({"durationSeconds": [1]}, "durationSeconds is [1], not a number of seconds"),
    ({"durationSeconds": "x" * 100}, f'durationSeconds is "{"x" * 39}, not a number of seconds'),
    ({"output": "out.txt"}, 'output is "out.txt", not an object'),
    ({"firstError": [1]}, "firstError is [1], not an object"),
    ({"output": {"rows": "many"}}, 'output.rows is "many", not a count'),
    ({"output": {"rows": 1.5}}, "output.rows is 1.5, not a count"),
    ({"output": {"rows": False}}, "output.rows is false, not a count"),
    ({"output": {"rows": -1}}, "output.rows is -1, not a count"),
])
def test_job_problem(job: dict[str, Any], problem: str | None) -> None:
    assert job_problem(job) == problem


@pytest.mark.parametrize("job", [{"startTime": "yesterday"}, {"output": {"rows": "many"}}])
def test_a_job_result_of_wrong_types_is_refused_in_one_line(
    tmp_path: Path, job: dict[str, Any]
) -> None:
    output = write_output(tmp_path, [FAILED_ROW])
    (tmp_path / "_prs/report/job_result.json").write_text(json.dumps(job))
    with pytest.raises(NoRunResults, match=(
            rf"^{tmp_path}/_prs/report/job_result\.json is not as the merge writes it "
            r"\(.* not a (number of seconds|count)\); run the step again to write it anew$")):
        write_run_report(output)
    assert "<h1>s</h1>" in build_run_report(output, {"stepName": "s"}, [])  # the merge's own


def test_log_lines_cut_an_over_long_line_and_go_on() -> None:
    assert LOG_LINE_CHARS == 64 << 10 and LOG_SCAN_BYTES == 64 << 20
    text = "a\n" + "x" * (3 * LOG_LINE_CHARS + 5) + "\nb\n" + "y" * LOG_LINE_CHARS + "\nc"
    assert list(log_lines(io.BytesIO(text.encode()))) == [
        "a\n", "x" * LOG_LINE_CHARS, "b\n", "y" * LOG_LINE_CHARS, "c"]


def test_log_lines_stop_after_the_scanned_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_report_writer, "LOG_SCAN_BYTES", 10)
    monkeypatch.setattr(run_report_writer, "LOG_LINE_CHARS", 4)
    assert list(log_lines(io.BytesIO(b"abc\ndefgh\nij\nk\n"))) == ["abc\n", "defg"]
    assert list(log_lines(io.BytesIO(b"abc\nde\nfg\n"))) == ["abc\n", "de\n", "fg\n"]
    assert list(log_lines(io.BytesIO(b"abc\nde\nfgh\n"))) == ["abc\n", "de\n"]
    assert list(log_lines(io.BytesIO(b"abcdefghijklmnop\nq\n"))) == []
    assert list(log_lines(io.BytesIO(b"abcdefghi\nq\n"))) == ["abcd"]


def test_a_log_of_one_huge_line_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """A worker that printed a whole file on one line: its log is never held whole."""
    output = write_output(tmp_path, [FAILED_ROW])
    with (tmp_path / "_prs/logs/0/1.log").open("a") as log:
        log.write("y" * (32 << 20))
        log.write("\n" + LOG)
    tracemalloc.start()
    try:
        text = build_run_report(output, {}, [])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak:,} bytes"
    assert "line 7" in text and "ValueError: four</pre>" in text
