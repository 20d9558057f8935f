"""The merge: committed results, in mini-batch order, into the output file and the report.

Streams one record at a time, so memory does not grow with the output.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from prs_runner.output.append_row_output import AppendRowOutput, OutputMismatch, open_output
from prs_runner.output.commit_index import Commit, chosen
from prs_runner.output.commit_log import COMMITS_DIR, damaged_indexes, read_commits, void
from prs_runner.output.payload_reads import read_payloads
from prs_runner.output.results import SUCCEEDED, ErrorInfo, first_of
from prs_runner.output.run_report import ReportData, ReportGatherer
from prs_runner.output.run_report_writer import write_run_report_after_merge
from prs_runner.planning.plan import MiniBatch, Plan
from prs_runner.step.thresholds import Counts, crossed_threshold
from prs_runner.storage.filesystem import Storage
from prs_runner.storage.object_reads import requests_made

REPORT_DIR = "_prs/report"
JOB_RESULT = f"{REPORT_DIR}/job_result.json"
REPORT_COLUMNS = ["id", "shard", "process", "tries", "items", "succeeded", "failed", "seconds",
                  "status", "error", "started"]  # started: Unix seconds, empty when not known


def read_shard_outcomes(output: Storage, node_count: int) -> list[dict[str, Any]]:
    outcomes = []
    for shard in range(node_count):
        try:
            outcomes.append(json.loads(output.read_bytes(f"_prs/shards/{shard}.json")))
        except FileNotFoundError:
            outcomes.append({"shard": shard, "status": "missing"})
    return outcomes


def overall_status(outcomes: list[dict[str, Any]]) -> tuple[str, str, str]:
    """(status, reason, message): the first failed shard names the cause."""
    for outcome in outcomes:
        if outcome["status"] == "failed":
            return "Failed", outcome["reason"], outcome["message"]
    missing = [str(o["shard"]) for o in outcomes if o["status"] in ("missing", "stopped")]
    if missing:
        return "Failed", "ShardFailed", f"shard(s) {', '.join(missing)} did not finish"
    return "Succeeded", "Completed", ""


def first_error(outcomes: list[dict[str, Any]]) -> ErrorInfo | None:
    """The first error the shards report, in shard order (one that was raised first)."""
    return first_of(ErrorInfo.from_dict(o.get("firstError")) for o in outcomes)


def first_error_text(outcomes: list[dict[str, Any]]) -> str:
    error = first_error(outcomes)
    return f"; first error: {error.one_line()}" if error is not None else ""


def merge_results(
    plan: Plan, output: Storage, outcomes: list[dict[str, Any]], started: float | None = None,
    status_override: tuple[str, str, str] | None = None,
    commit_source: Callable[[], list[Commit]] | None = None,
) -> dict[str, Any]:
    """Merge, and leave no partial file behind when it fails (a full disk, say). Then the
    HTML run report, from the rows the merge wrote (once merge_into's records are freed).
    COMMIT_SOURCE gives the output's commits (`read_commits` when not given)."""
    try:
        result, data = merge_into(plan, output, outcomes, started, status_override,
                                  commit_source or partial(read_commits, output))
    except BaseException:
        for name in (f".{plan.step['appendRowFileName']}.partial",
                     ".processed_mini_batches.csv.partial"):
            with contextlib.suppress(OSError):
                output.delete(f"{REPORT_DIR}/{name}")
        raise
    write_run_report_after_merge(output, result, outcomes, data)  # never raises: says why
    return result


def merge_into(
    plan: Plan, output: Storage, outcomes: list[dict[str, Any]], started: float | None,
    status_override: tuple[str, str, str] | None, commit_source: Callable[[], list[Commit]],
) -> tuple[dict[str, Any], ReportData | None]:
    """The job's result, and the report's data gathered from the rows as they are written
    (the page needs no second reading of them; None: a row could not be gathered)."""
    status, reason, message = status_override or overall_status(outcomes)
    requests_before = requests_made()
    spec = plan.step
    write_output = status == "Succeeded" and spec["outputAction"] == "append_row"
    file_name = spec["appendRowFileName"]
    temp = f"{REPORT_DIR}/.{file_name}.partial"
    tally, done = (0, 0, 0, 0, 0), 0  # Counts' fields: no object per record
    gatherer: ReportGatherer | None = ReportGatherer()
    with output.open_write(f"{REPORT_DIR}/.processed_mini_batches.csv.partial") as report_file:
        # A lone surrogate (os.fsdecode of a name that is not UTF-8, in an error message) is
        # written as its escape, \udcff, rather than failing the merge.
        report = io.TextIOWrapper(report_file, newline="", encoding="utf-8",
                                  errors="backslashreplace")
        writer = csv.writer(report)
        writer.writerow(REPORT_COLUMNS)
        sink = open_output(spec["appendRowFormat"], output.open_write(temp)) if (
            write_output) else None
        chosen_commits = chosen(commit_source())
        stopped = unfinished_tries(outcomes)
        commits = [chosen_commits.get(mb.id) for mb in plan.mini_batches]
        torn: list[Commit] = []
        chunk: list[list[Any]] = []  # rows written, and gathered, a chunk at a time
        for mb, commit, payload in zip(plan.mini_batches, commits,
                                       read_payloads(output, commits), strict=True):
            if commit is not None and payload is None:
                torn.append(commit)  # its index line is whole, its payload is not
                commit = None
            try:
                row, mb_counts = copy_record(commit, payload, sink)
            except OutputMismatch as mismatch:
                assert sink is not None
                sink.close()
                sink, write_output = None, False
                status, reason, message = "Failed", "AppendRowSchemaMismatch", str(mismatch)
                row, mb_counts = copy_record(commit, payload, None)
            if row is None:
                row = unfinished_row(mb, stopped.get(mb.id))
            else:
                won, lost, items_won, items_lost, rows = mb_counts
                tally = (tally[0] + won, tally[1] + lost, tally[2] + items_won,
                         tally[3] + items_lost, tally[4] + rows)
                done += 1
            chunk.append(row)
            if len(chunk) == ROWS_CHUNK:
                gatherer = write_rows(writer, gatherer, chunk)
                chunk = []
        gatherer = write_rows(writer, gatherer, chunk)
        counts = Counts(*tally)
        void(output, torn)
        if sink is not None:
            sink.close()
        report.flush()
        report.detach()
    output.rename(f"{REPORT_DIR}/.processed_mini_batches.csv.partial",
                  f"{REPORT_DIR}/processed_mini_batches.csv")
    not_run = len(plan.mini_batches) - done
    if status == "Succeeded" and not_run:
        # Every mini-batch needs a committed result (succeeded, or failed within the
        # thresholds); a success with holes would be reused and the holes never filled.
        status, reason, message = "Failed", "MiniBatchesNotRun", (
            f"{not_run} of {len(plan.mini_batches)} mini-batches have no committed result "
            f"(never run, or their record is torn{damage_text(output, torn)}); run the step "
            "again to run just those")
        write_output = False
    crossed = crossed_threshold(counts, spec, len(plan.mini_batches))
    if status == "Succeeded" and crossed:
        # Counted once each here: the shards' own counts, summed while they ran, may count
        # late what two shards ran (execution.shard_account.disown).
        status, reason, message = "Failed", "ErrorThresholdExceeded", (
            crossed + first_error_text(outcomes))
        write_output = False
    if status == "Succeeded" and done and not counts.mini_batches_succeeded:
        # Thresholds at -1 tolerate failures, but a run where nothing worked is a broken script.
        status, reason, message = "Failed", "AllMiniBatchesFailed", (
            f"all {done} mini-batches failed" + first_error_text(outcomes))
        if write_output:
            output.delete(temp)
        write_output = False
    digest = None
    if write_output:
        output.rename(temp, file_name)
        digest = output.digest(file_name)  # reuse checks the output is still this one
    else:
        output.delete(temp)
    result = job_result(plan, counts, done, (status, reason, message), started, digest)
    result["storageRequests"] = {  # object-store calls: what the step cost (0 on local files)
        "plan": plan.storage_requests,
        "shards": sum(int(o.get("storageRequests", 0)) for o in outcomes),
        # the merge's own, and the report's write just below
        "merge": requests_made() - requests_before + (output.local is None),
    }
    first = first_error(outcomes)
    result["firstError"] = first.to_dict() if first is not None else None  # with its traceback
    output.write_atomic(JOB_RESULT, json.dumps(result, indent=2).encode())
    return result, None if gatherer is None else gatherer.finish()


ROWS_CHUNK = 1024  # rows written and gathered at a time
DAMAGE_SAID = 3  # damaged logs named in a message


def damage_text(output: Storage, torn: list[Commit]) -> str:
    """What a merge that finds mini-batches without a result says of damaged logs: an index
    with records after a torn line, payloads that fail their checksum (a crash that lost a
    part of a log, or a write from outside the runner)."""
    said = damaged_indexes(output)
    lives = sorted({commit.life for commit in torn})
    if lives:
        one = len(torn) == 1
        named = ", ".join(f"{COMMITS_DIR}/{life}.dat" for life in lives[:DAMAGE_SAID])
        said.append(f"{len(torn)} payload{'' if one else 's'} in {named}"
                    f"{'' if len(lives) <= DAMAGE_SAID else ', ...'} "
                    f"fail{'s its' if one else ' their'} checksum")
    more = f"; and {len(said) - DAMAGE_SAID} more" if len(said) > DAMAGE_SAID else ""
    return "".join(f": {text}" if i == 0 else f"; {text}"
                   for i, text in enumerate(said[:DAMAGE_SAID])) + more


def write_rows(writer: Any, gatherer: ReportGatherer | None,
               rows: list[list[Any]]) -> ReportGatherer | None:
    """ROWS into the CSV's WRITER (None as an empty field), and into GATHERER; None once a
    row could not be gathered (a record of another shape, written by something else than a
    worker): the page then reads the CSV, and says in one line why it cannot be drawn. The
    merge's outcome never depends on its page."""
    writer.writerows(rows)
    if gatherer is None:
        return None
    try:
        gatherer.add_rows(rows)
    except Exception:  # any: the report never fails the merge
        return None
    return gatherer


def unfinished_tries(outcomes: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Mini-batches tried but never finished, by id: the shards stopped first."""
    return {int(mb_id): info for outcome in outcomes
            for mb_id, info in (outcome.get("unfinished") or {}).items()}


def unfinished_row(mb: MiniBatch, tried: dict[str, Any] | None) -> list[Any]:
    """The report's row of a mini-batch without a result: never run, or tried and then
    stopped (a threshold or a deadline ended the step first)."""
    if tried is None:
        return [mb.id, mb.shard, None, 0, mb.item_count, 0, 0, None, "not_run", "", None]
    return [mb.id, mb.shard, tried["process"], tried["tries"], mb.item_count, 0, 0, None,
            "stopped", capped(tried["error"]), None]


def copy_record(
    commit: Commit | None, payload: bytes | None, sink: AppendRowOutput | None
) -> tuple[list[Any] | None, tuple[int, int, int, int, int]]:
    """A mini-batch's committed record (None: there is none) into the report's row (in
    REPORT_COLUMNS' order, None where empty), its counts (as Counts' fields) and, when it
    succeeded, its rows into SINK."""
    if commit is None or payload is None:
        return None, (0, 0, 0, 0, 0)
    header = commit.header
    ok = header.status == SUCCEEDED
    if sink is not None and ok:
        sink.append(header.id, payload)
    counts = (int(ok), int(not ok), header.succeeded, header.failed, header.rows)
    error = header.error or {}
    row = [header.id, header.shard, header.process, header.tries, header.items, header.succeeded,
           header.failed, header.seconds, header.status,
           capped(f"{error.get('type')}: {error.get('message')}") if error else "",
           header.started]  # None: recorded before starts were
    return row, counts


ERROR_TEXT_CHARS = 2000  # per report row: the full traceback is in the worker's log


def capped(text: str) -> str:
    if len(text) <= ERROR_TEXT_CHARS:
        return text
    return f"{text[:ERROR_TEXT_CHARS]}... ({len(text):,} characters; see the worker's log)"


def job_result(
    plan: Plan, counts: Counts, done: int, outcome: tuple[str, str, str], started: float | None,
    digest: tuple[int, str] | None,
) -> dict[str, Any]:
    """The report; `digest` is the (size, sha256) of the output file when one was written."""
    wrote_output = digest is not None
    status, reason, message = outcome
    now = time.time()
    total = len(plan.mini_batches)
    return {
        "stepName": plan.step_name,
        "fingerprint": plan.fingerprint,
        "status": status,
        "reason": reason,
        "message": message,
        "miniBatches": {"total": total, "succeeded": counts.mini_batches_succeeded,
                        "failed": done - counts.mini_batches_succeeded,
                        "pending": total - done},
        "items": {"total": plan.total_items, "succeeded": counts.items_succeeded,
                  "failed": counts.items_failed},
        "output": {"uri": plan.step["output"]["uri"],
                   "file": plan.step["appendRowFileName"] if wrote_output else None,
                   "rows": counts.rows if wrote_output else 0,
                   "bytes": digest[0] if digest else None,
                   "sha256": digest[1] if digest else None},
        "startTime": started,
        "completionTime": now,
        "durationSeconds": round(now - started, 3) if started else None,
    }
