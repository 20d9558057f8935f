"""Writes the HTML run report, `_prs/report/index.html`, from the output's own files: the
merge's report rows, job_result.json, the shards' outcomes and the workers' logs. The merge
calls it last, with the rows it gathered as it wrote them; `prs report` calls it again on
any output, and reads them back."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
from collections.abc import Iterator
from typing import IO, Any

from prs_runner.output.run_metrics import MetricTable, add_records, metric_records
from prs_runner.output.run_report import MiniBatchRow, ReportData, gather
from prs_runner.output.run_report_logs import LogExcerpt, failed_tries, log_path
from prs_runner.output.run_report_page import render_page
from prs_runner.planning.plan_store import PLAN_FILE, read_header
from prs_runner.step.spec import MAXIMUMS
from prs_runner.storage.filesystem import Storage

log = logging.getLogger(__name__)

REPORT_PAGE = "_prs/report/index.html"
ROWS_FILE = "_prs/report/processed_mini_batches.csv"
JOB_RESULT_FILE = "_prs/report/job_result.json"
SHARDS_DIR = "_prs/shards"
LOG_SCAN_BYTES = 64 << 20  # of a worker's log searched for tracebacks, at most
LOG_LINE_CHARS = 64 << 10  # of one log line read; the rest of a longer line is skipped


class NoRunResults(Exception):
    """The output holds no merged results to report on."""


def write_run_report(output: Storage, job: dict[str, Any] | None = None,
                     outcomes: list[dict[str, Any]] | None = None,
                     data: ReportData | None = None) -> str:
    """Build the page and publish it whole; where it is (a path, or a URI). JOB, OUTCOMES
    and DATA: what the merge already holds (read from the output when not given)."""
    page = build_run_report(output, job, outcomes, data)
    # A lone surrogate (os.fsdecode of a non-UTF-8 name, in an error message) is shown as
    # its escape, \udcff, rather than failing the page.
    output.write_atomic(REPORT_PAGE, page.encode("utf-8", errors="backslashreplace"))
    return output.uri_of(REPORT_PAGE)


def write_run_report_after_merge(output: Storage, job: dict[str, Any],
                                 outcomes: list[dict[str, Any]],
                                 data: ReportData | None = None) -> None:
    """The merge's last step: a report that cannot be written is said in one line, never
    fails the merge (its results are published already) nor changes its outcome."""
    try:
        write_run_report(output, job, outcomes, data)
    except Exception as error:  # any failure: the merge's outcome stands
        with contextlib.suppress(Exception):  # an earlier run's page must not stand for it
            output.delete(REPORT_PAGE)
        log.warning("prs: the HTML run report %s could not be written: %s: %s",
                    output.uri_of(REPORT_PAGE), type(error).__name__, error)


def build_run_report(output: Storage, job: dict[str, Any] | None = None,
                     outcomes: list[dict[str, Any]] | None = None,
                     data: ReportData | None = None) -> str:
    data = read_rows(output) if data is None else data
    if job is None:
        job = read_job(output)
        problem = job_problem(job)
        if problem:
            raise NoRunResults(f"{output.uri}/{JOB_RESULT_FILE} is not as the merge writes it "
                               f"({problem}); run the step again to write it anew")
    outcomes = read_outcomes(output) if outcomes is None else outcomes
    return render_page(job, outcomes, data, find_tracebacks(output, data.failures),
                       find_metrics(output, outcomes))


def read_rows(output: Storage) -> ReportData:
    """The report's data from the rows the merge wrote (`prs report`)."""
    try:
        stream = output.open_read(ROWS_FILE)
    except FileNotFoundError:
        raise NoRunResults(missing_results(output)) from None
    with stream:
        try:
            # utf-8-sig: a file saved again by a spreadsheet starts with a byte-order mark
            return gather(csv.reader(io.TextIOWrapper(stream, encoding="utf-8-sig",
                                                      newline="")))
        except (ValueError, IndexError, OverflowError, csv.Error) as error:
            why = "a number in it is too large" if isinstance(error, OverflowError) else error
            raise NoRunResults(f"{output.uri}/{ROWS_FILE} is not as the merge writes it "
                               f"({why}); run the step again to write it anew") from None


def missing_results(output: Storage) -> str:
    if not output.list_names("_prs", folders=True):
        return (f"{output.uri} holds no _prs/ folder: it is not a step's output (name the "
                "folder or URI that the step's output.uri points to)")
    return (f"{output.uri}/{ROWS_FILE} is missing: no run has ended on this output yet "
            "(run the step; its merge writes that file)")


def read_job(output: Storage) -> dict[str, Any]:
    with contextlib.suppress(FileNotFoundError, ValueError):
        job = json.loads(output.read_bytes(JOB_RESULT_FILE))
        if isinstance(job, dict):
            return job
    return {}


NUMBER_FIELDS = ("startTime", "durationSeconds")
TABLE_FIELDS = ("output", "firstError")


def job_problem(job: dict[str, Any]) -> str | None:
    """What in a job_result.json (hand-edited, or corrupt) the page cannot show; None when
    nothing. The page reads these fields as numbers and tables."""
    for name in NUMBER_FIELDS:
        if job.get(name) is not None and not is_moment(job[name]):
            return f"{name} is {json.dumps(job[name])[:40]}, not a number of seconds"
    for name in TABLE_FIELDS:
        if job.get(name) is not None and not isinstance(job[name], dict):
            return f"{name} is {json.dumps(job[name])[:40]}, not an object"
    rows = (job.get("output") or {}).get("rows")
    if rows is not None and (type(rows) is not int or rows < 0):
        return f"output.rows is {json.dumps(rows)[:40]}, not a count"
    return None


def is_moment(value: Any) -> bool:
    """A number of seconds the page can show as a time (a date up to the year 9999)."""
    return type(value) in (int, float) and math.isfinite(value) and 0 <= value < 2.5e11


def read_outcomes(output: Storage) -> list[dict[str, Any]]:
    """The shards' outcomes, in shard order (`_prs/shards/<index>.json`): each of the plan's
    shards, one that left none as missing (as the merge shows it); without a plan that can
    be read, those found."""
    names = [n for n in output.list_names(SHARDS_DIR) if n.removesuffix(".json").isdigit()]
    found: dict[int, dict[str, Any]] = {}
    for name in names:
        with contextlib.suppress(FileNotFoundError, ValueError):
            outcome = json.loads(output.read_bytes(f"{SHARDS_DIR}/{name}"))
            if isinstance(outcome, dict):
                found[int(name.removesuffix(".json"))] = outcome
    shards = planned_shards(output)
    if shards is None:
        return [found[shard] for shard in sorted(found)]
    return [found.get(shard, {"shard": shard, "status": "missing"}) for shard in range(shards)]


def planned_shards(output: Storage) -> int | None:
    """nodeCount of the plan in the output; None without one that can be read."""
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
        count = read_header(output.uri_of(PLAN_FILE)).node_count
        if type(count) is int and 0 < count <= MAXIMUMS["nodeCount"]:  # not a hand-edited one
            return count
    return None


def find_tracebacks(output: Storage, failures: list[MiniBatchRow]) -> dict[int, LogExcerpt]:
    """The failures' tracebacks in their workers' logs: each log read once, as a stream."""
    wanted: dict[tuple[int, int], set[int]] = {}
    for row in failures:
        if row.process is not None:
            wanted.setdefault((row.shard, row.process), set()).add(row.id)
    found: dict[int, LogExcerpt] = {}
    for (shard, process), ids in sorted(wanted.items()):
        try:
            with output.open_read(log_path(shard, process)) as stream:
                found.update(failed_tries(log_lines(stream), ids))
        except FileNotFoundError:
            continue  # the failure still shows, without its traceback
    return found


def find_metrics(output: Storage, outcomes: list[dict[str, Any]]) -> MetricTable:
    """What the entry scripts logged through Azure's Run: read from the logs of the workers
    their shards' OUTCOMES name (`metricsLogged`), so a run without metrics reads no log."""
    table = MetricTable()
    for shard, process in metric_logs(outcomes):
        try:
            with output.open_read(log_path(shard, process)) as stream:
                add_records(table, metric_records(log_lines(stream)))
        except FileNotFoundError:
            continue
    return table


def metric_logs(outcomes: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(shard, process) of each worker whose log holds metrics, in order; what a hand-edited
    outcome holds that is not a number is skipped."""
    found: set[tuple[int, int]] = set()
    for outcome in outcomes:
        processes = outcome.get("metricsLogged")
        if type(outcome.get("shard")) is int and isinstance(processes, list):
            found.update((outcome["shard"], p) for p in processes if type(p) is int)
    return sorted(found)


def log_lines(stream: IO[bytes]) -> Iterator[str]:
    """A log's lines, up to LOG_SCAN_BYTES (a log holds whatever run() prints). A line is
    read LOG_LINE_CHARS at most at a time, so that one without an end (a whole file printed
    on one line) is never held whole: its first LOG_LINE_CHARS are given, the rest skipped."""
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
    seen = 0
    while line := text.readline(LOG_LINE_CHARS):
        seen += len(line)
        rest = line
        while (not rest.endswith("\n") and seen <= LOG_SCAN_BYTES
               and (rest := text.readline(LOG_LINE_CHARS))):
            seen += len(rest)
        if seen > LOG_SCAN_BYTES:
            return
        yield line
