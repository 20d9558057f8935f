"""The run report's data: rows read from the CSV, gathered in one pass, binned in time; and
where a failure's traceback is in its worker's log."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from prs_runner.output import run_report
from prs_runner.output.merge import REPORT_COLUMNS
from prs_runner.output.run_report import (
    REQUIRED_COLUMNS,
    Bin,
    Lane,
    MiniBatchRow,
    Places,
    ReportData,
    ThroughputBin,
    bin_of,
    gather,
    lane_bins,
    throughput,
)
from prs_runner.output.run_report_logs import LogExcerpt, failed_tries, log_path

T0 = 1_767_225_600.0  # a run's first start, Unix seconds


def row(mb_id: int, shard: int = 0, process: int | None = 0, *, seconds: float | None = 1.0,
        status: str = "succeeded", started: float | None = T0, tries: int = 1, items: int = 2,
        error: str = "") -> MiniBatchRow:
    ok = status == "succeeded"
    return MiniBatchRow(id=mb_id, shard=shard, process=process, tries=tries, items=items,
                        succeeded=items if ok else 0, failed=0 if ok else items,
                        seconds=seconds, status=status, error=error, started=started)


HEADER = list(MiniBatchRow._fields)  # the merge's columns, in its order
CSV_ROW = {"id": "7", "shard": "1", "process": "2", "tries": "3", "items": "4",
           "succeeded": "1", "failed": "3", "seconds": "0.25", "status": "failed",
           "error": "ValueError: x", "started": "1767225600.5"}


def lines_of(rows: Iterable[MiniBatchRow], header: list[str] = HEADER) -> list[list[str]]:
    """ROWS as csv.reader reads them back from the merge's CSV, its header first."""
    return [header, *([("" if value is None else str(value)) for value in r][:len(header)]
                      for r in rows)]


def test_the_report_reads_the_columns_the_merge_writes() -> None:
    assert HEADER == REPORT_COLUMNS


@pytest.mark.parametrize(("header", "fields", "expected"), [
    (HEADER, list(CSV_ROW.values()),
     MiniBatchRow(7, 1, 2, 3, 4, 1, 3, 0.25, "failed", "ValueError: x", 1767225600.5)),
    # written before starts were recorded: no such column
    (HEADER[:-1], list(CSV_ROW.values())[:-1],
     MiniBatchRow(7, 1, 2, 3, 4, 1, 3, 0.25, "failed", "ValueError: x", None)),
    (HEADER[:-2], list(CSV_ROW.values())[:-2],
     MiniBatchRow(7, 1, 2, 3, 4, 1, 3, 0.25, "failed", "", None)),
    # never run: no process, no time
    (HEADER, ["9", "0", "", "0", "2", "0", "0", "", "not_run", "", ""],
     MiniBatchRow(9, 0, None, 0, 2, 0, 0, None, "not_run", "", None)),
    # the columns in another order, and one more
    (["more", *reversed(HEADER)], ["x", *reversed(list(CSV_ROW.values()))],
     MiniBatchRow(7, 1, 2, 3, 4, 1, 3, 0.25, "failed", "ValueError: x", 1767225600.5)),
    (HEADER, [*list(CSV_ROW.values())[:-1]],  # a row cut short of its last column
     MiniBatchRow(7, 1, 2, 3, 4, 1, 3, 0.25, "failed", "ValueError: x", None)),
])
def test_a_csv_row_is_read_with_its_empty_fields_as_none(
    header: list[str], fields: list[str], expected: MiniBatchRow
) -> None:
    assert MiniBatchRow.from_fields(fields, Places.of(header)) == expected
    data = gather([header, fields])
    assert data.failures + data.slowest in ([expected], [expected, expected], [])


@pytest.mark.parametrize("missing", REQUIRED_COLUMNS)
def test_a_header_without_a_needed_column_is_refused(missing: str) -> None:
    with pytest.raises(ValueError, match=f"^no column {missing} in its header$"):
        gather([[name for name in HEADER if name != missing]])
    assert tuple(HEADER[:9]) == REQUIRED_COLUMNS


@pytest.mark.parametrize(("started", "seconds", "ended"), [
    (10.0, 2.5, 12.5), (None, 2.5, None), (10.0, None, None), (0.0, 0.0, 0.0)])
def test_a_row_ends_its_seconds_after_its_start(
    started: float | None, seconds: float | None, ended: float | None
) -> None:
    assert row(1, started=started, seconds=seconds).ended == ended


def spans_of(data: ReportData) -> list[tuple[Any, ...]]:
    s = data.spans
    return list(zip(s.ids, s.lanes, s.starts, s.seconds, s.statuses, s.tries, s.items,
                    strict=True))


def test_gather_counts_every_row_and_keeps_the_timed_ones_by_lane() -> None:
    rows = [
        row(0, 1, 0, started=T0 + 2, seconds=1.5),
        row(1, 0, 1, started=T0, seconds=0.5, status="failed", tries=3, error="E: x"),
        row(2, 0, 0, started=T0 + 1, seconds=2.0, tries=2, items=5),
        row(3, 0, None, seconds=None, status="not_run", started=None),
        row(4, 1, 0, seconds=None, status="stopped", started=None, tries=1, error="E: y"),
        row(5, 0, 1, started=None, seconds=4.0),  # an older runner's row: no start
    ]
    data = gather(lines_of(rows))
    assert data.mini_batches == 6
    assert dict(data.by_status) == {"succeeded": 3, "failed": 1, "not_run": 1, "stopped": 1}
    assert (data.items, data.items_succeeded, data.items_failed) == (15, 9, 6)
    assert data.retried == 2
    assert data.untimed == 1
    # lanes in (shard, process) order, whatever order the rows came in
    assert data.lanes == [Lane(0, 0, 1, 0, 2.0), Lane(0, 1, 2, 1, 4.5), Lane(1, 0, 1, 0, 1.5)]
    assert spans_of(data) == [(0, 2, T0 + 2, 1.5, 0, 1, 2), (1, 1, T0, 0.5, 1, 3, 2),
                              (2, 0, T0 + 1, 2.0, 0, 2, 5)]
    assert data.failures == [rows[1], rows[4]] and data.failures_total == 2
    assert [r.id for r in data.slowest] == [5, 2, 0, 1]
    assert data.bounds == (T0, T0 + 3.5)  # row 0 ends last; row 1 starts first


def test_gather_of_nothing() -> None:
    data = gather([])
    assert (data.mini_batches, data.lanes, len(data.spans)) == (0, [], 0)
    assert data.bounds is None


def test_an_unknown_status_is_drawn_as_a_failure() -> None:
    data = gather(lines_of([row(0, status="odd")]))
    assert list(data.spans.statuses) == [run_report.STATUS_CODES["failed"]]
    assert data.lanes == [Lane(0, 0, 1, 0, 1.0)]  # a lane's failed counts "failed" rows only


def test_the_slowest_are_kept_few_slowest_first_lower_ids_first_among_equals() -> None:
    seconds = [3.0, 9.0, 1.0, 9.0, 5.0, 7.0, 2.0, 9.0, 4.0, 6.0, 8.0, 0.5, 5.0, 9.5]
    data = gather(lines_of(row(i, seconds=s) for i, s in enumerate(seconds)))
    assert len(data.slowest) == run_report.SLOWEST_SHOWN == 10
    assert [(r.id, r.seconds) for r in data.slowest] == [
        (13, 9.5), (1, 9.0), (3, 9.0), (7, 9.0), (10, 8.0), (5, 7.0), (9, 6.0), (4, 5.0),
        (12, 5.0), (8, 4.0)]


def test_rows_of_the_same_id_and_time_are_ranked_without_comparing_them() -> None:
    # a hand-edited CSV: 12 rows of one id and time, their other fields unlike (None, str)
    rows = [row(4, process=p, seconds=2.0, started=s, error=e)
            for p, s, e in [(0, None, ""), (1, T0, "E: x")] * 6]
    data = gather(lines_of(rows))
    assert data.slowest == rows[:10]  # the first ten, in their order


def test_the_merge_gathers_its_rows_as_gather_reads_them_back() -> None:
    rows = [row(0, seconds=0.0, started=T0), row(1, process=3, seconds=2.5, tries=2),
            row(2, process=None, seconds=None, started=None, status="not_run"),
            row(3, status="failed", error="E: x")]
    gatherer = run_report.ReportGatherer()
    for fields in rows:
        gatherer.add(list(fields))
    assert gatherer.finish() == gather(lines_of(rows))


def test_only_the_first_failures_are_kept_and_all_are_counted() -> None:
    rows: Iterable[MiniBatchRow] = (row(i, status="failed") for i in range(60))
    data = gather(lines_of(rows))
    assert [r.id for r in data.failures] == list(range(run_report.FAILURES_SHOWN))
    assert data.failures_total == 60


@pytest.mark.parametrize(("lanes", "bins"), [(0, 120), (1, 120), (100, 120), (101, 118),
                                             (400, 30), (1000, 12), (5000, 12)])
def test_many_processes_get_fewer_time_bins_each(lanes: int, bins: int) -> None:
    assert run_report.timeline_bins(lanes) == bins


@pytest.mark.parametrize(("moment", "expected"), [
    (0.0, 0), (0.99, 0), (1.0, 1), (9.99, 9), (10.0, 9), (55.0, 9), (-3.0, 0)])
def test_bin_of_clamps_to_the_first_and_last_bin(moment: float, expected: int) -> None:
    assert bin_of(moment, 0.0, 1.0, 10) == expected


def test_lane_bins_cut_spans_at_bin_edges() -> None:
    data = gather(lines_of([
        row(0, 0, 0, started=0.0, seconds=1.5),  # bins 0 and 1
        row(1, 0, 1, started=2.5, seconds=0.5, status="failed"),  # inside bin 2
        row(2, 0, 1, started=2.25, seconds=0.25),
        row(3, 0, 0, started=3.0, seconds=1.0),  # bin 3 (its end, 4.0, clamps to bin 3)
    ]))
    bins = lane_bins(data.spans, 2, 0.0, 4.0, bins=4)
    assert bins == [Bin(0, 0, 1.0, 1, 0), Bin(0, 1, 0.5, 0, 0), Bin(0, 3, 1.0, 1, 0),
                    Bin(1, 2, 0.75, 2, 1)]


def test_lane_bins_of_a_run_shorter_than_a_second() -> None:
    data = gather(lines_of([row(0, 0, 0, started=0.0, seconds=0.1875),
                            row(1, 0, 0, started=0.375, seconds=0.125)]))
    assert lane_bins(data.spans, 1, 0.0, 0.5, bins=4) == [
        Bin(0, 0, 0.125, 1, 0), Bin(0, 1, 0.0625, 0, 0), Bin(0, 3, 0.125, 1, 0)]


def test_lane_bins_of_an_instant_run() -> None:
    data = gather(lines_of([row(0, started=5.0, seconds=0.0)]))
    assert lane_bins(data.spans, 1, 5.0, 5.0, bins=3) == [Bin(0, 0, 0.0, 1, 0)]


@pytest.mark.parametrize(("count", "bins"), [(1, 10), (40, 10), (47, 11), (240, 60),
                                             (2_400, 60)])
def test_throughput_has_a_few_mini_batches_per_bin(count: int, bins: int) -> None:
    data = gather(lines_of(row(i, started=float(i), seconds=0.5) for i in range(count)))
    result = throughput(data.spans, 0.0, count - 0.5)
    assert len(result) == bins
    assert sum(b.items_succeeded for b in result) == 2 * count


def test_throughput_counts_items_where_each_mini_batch_ended() -> None:
    rows = [row(0, started=0.0, seconds=1.0, items=3),
            row(1, started=0.0, seconds=9.5, items=4, status="failed"),
            row(2, started=2.0, seconds=0.5, items=5)]
    result = throughput(gather(lines_of(rows)).spans, 0.0, 10.0)
    assert len(result) == 10
    assert result[0] == ThroughputBin(0.0, 1.0, 0, 0)
    assert result[1] == ThroughputBin(1.0, 1.0, 3, 0)
    assert result[2] == ThroughputBin(2.0, 1.0, 5, 0)
    assert result[9] == ThroughputBin(9.0, 1.0, 0, 4)


LOG = """\
2026-12-02 13:12:24,001 INFO prs.worker [shard 0 process 1] init() done
printed by run()
2026-12-02 13:12:24,697 ERROR prs.worker [shard 0 process 1] run() failed on mini-batch 4
Traceback (most recent call last):
  File "score.py", line 7, in run
ValueError: first try
2026-12-02 13:12:25,138 ERROR prs.worker [shard 0 process 1] run() failed on mini-batch 11
Traceback (most recent call last):
ValueError: eleven
2026-12-02 13:12:25,974 ERROR prs.worker [shard 0 process 1] run() failed on mini-batch 4
Traceback (most recent call last):
ValueError: last try
"""


@pytest.mark.parametrize(("wanted", "expected"), [
    ({4}, {4: LogExcerpt(10, "2026-12-02 13:12:25,974 ERROR prs.worker [shard 0 process 1] "
                             "run() failed on mini-batch 4\nTraceback (most recent call "
                             "last):\nValueError: last try")}),
    ({11}, {11: LogExcerpt(7, "2026-12-02 13:12:25,138 ERROR prs.worker [shard 0 process 1] "
                              "run() failed on mini-batch 11\nTraceback (most recent call "
                              "last):\nValueError: eleven")}),
    ({1, 5}, {}),
    (set(), {}),
])
def test_the_last_logged_failure_of_a_mini_batch_with_its_traceback(
    wanted: set[int], expected: dict[int, LogExcerpt]
) -> None:
    assert failed_tries(LOG.splitlines(keepends=True), wanted) == expected


def test_a_traceback_excerpt_is_bounded_in_lines_and_width() -> None:
    head = "2026-12-02 13:12:24,697 ERROR prs.worker [shard 0 process 0] run() failed on " \
           "mini-batch 2"
    lines = [head, *(f"frame {n} " + "x" * 600 for n in range(100))]
    found = failed_tries(lines, {2})[2]
    text = found.text.split("\n")
    assert found.line == 1
    assert len(text) == 40 and text[0] == head
    assert text[1] == ("frame 0 " + "x" * 600)[:500]


def test_a_record_that_ends_the_excerpt_is_a_timestamped_line_only() -> None:
    lines = ["2026-12-02 13:12:24,697 ERROR x run() failed on mini-batch 2\n",
             "2026-12-02 not a record\n", "2026-12-02 13:12:25,000 INFO next\n", "after\n"]
    assert failed_tries(lines, {2}) == {2: LogExcerpt(1, "2026-12-02 13:12:24,697 ERROR x "
                                                         "run() failed on mini-batch 2\n"
                                                         "2026-12-02 not a record")}


def test_a_worker_log_is_named_by_shard_and_process() -> None:
    assert log_path(3, 12) == "_prs/logs/3/12.log"


def test_a_traceback_keeps_each_line_as_logged_but_its_newline() -> None:
    lines = ["2026-12-02 13:12:24,697 ERROR x run() failed on mini-batch 2\n",
             "  indented and trailing spaces   \n", "ends in X\n", "crlf\r\n"]
    assert failed_tries(lines, {2})[2].text.split("\n")[1:] == [
        "  indented and trailing spaces   ", "ends in X", "crlf\r"]


def test_throughput_bins_of_a_short_run_and_of_a_long_one() -> None:
    short = [row(0, started=0.0, seconds=0.05, status="failed", items=3),
             row(1, started=0.0, seconds=0.06, status="failed", items=4),
             row(2, started=0.0, seconds=0.5, items=5)]
    result = throughput(gather(lines_of(short)).spans, 0.0, 0.5)
    assert [b.start for b in result[:2]] == [0.0, 0.05]
    assert result[1] == ThroughputBin(0.05, 0.05, 0, 7)  # both failed ones end in bin 1
    assert result[9].items_succeeded == 5
    long = [row(i, started=2.0 * i, seconds=2.0) for i in range(10)]
    assert [b.start for b in throughput(gather(lines_of(long)).spans, 0.0, 20.0)][:3] == [
        0.0, 2.0, 4.0]


def test_every_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match=r"^no column id, shard in its header$"):
        gather([HEADER[2:]])


def test_rows_without_times_are_counted_and_the_rest_still_drawn() -> None:
    rows = [row(0, seconds=None, started=None), row(1, started=None), row(2, started=T0 + 1),
            row(3, seconds=None, started=None)]
    data = gather(lines_of(rows))
    assert data.untimed == 3
    assert list(data.spans.ids) == [2]


def test_lanes_are_in_numeric_shard_and_process_order() -> None:
    data = gather(lines_of([row(0, 10, 2), row(1, 2, 10), row(2, 2, 3)]))
    assert [(lane.shard, lane.process) for lane in data.lanes] == [(2, 3), (2, 10), (10, 2)]
    assert list(data.spans.lanes) == [2, 1, 0]


def mixed_rows(count: int) -> list[MiniBatchRow]:
    """Rows of distinct mini-batches as a merge writes them: several lanes, retries, equal
    times, failures past FAILURES_SHOWN, and (every 97th) a row never run."""
    rows = []
    for i in range(count):
        status = "failed" if i % 3 == 0 else "weird" if i % 11 == 5 else "succeeded"
        if i % 97 == 50:
            rows.append(row(i, i % 2, None, seconds=None, started=None, status="not_run"))
            continue
        rows.append(row(i, shard=i % 2, process=(i * 7) % 3, seconds=float(i % 5) / 4,
                        status=status, started=T0 + i / 10, tries=1 + i % 4, items=i % 6,
                        error="E: x" if status == "failed" else ""))
    return rows


def gathered_by_rows(rows: list[MiniBatchRow], chunk: int) -> ReportData:
    gatherer = run_report.ReportGatherer()
    for start in range(0, len(rows), chunk):
        gatherer.add_rows([list(r) for r in rows[start:start + chunk]])
    return gatherer.finish()


def gathered_one_by_one(rows: list[MiniBatchRow]) -> ReportData:
    gatherer = run_report.ReportGatherer()
    for fields in rows:
        gatherer.add(list(fields))
    return gatherer.finish()


@pytest.mark.parametrize("chunk", [1, 2, 7, 40, 96, 1000])
@pytest.mark.parametrize("count", [0, 1, 45, 300])
def test_rows_gathered_a_chunk_at_a_time_give_what_one_at_a_time_gives(
        chunk: int, count: int) -> None:
    rows = mixed_rows(count)
    data = gathered_by_rows(rows, chunk)
    assert data == gathered_one_by_one(rows)
    assert data.mini_batches == count


def test_a_chunk_of_plain_rows_is_taken_column_by_column(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row ran and was timed (from the epoch's first second on): nothing is added row
    by row."""
    rows = [r for r in mixed_rows(200) if r.status != "not_run"]
    rows[:2] = [row(0, started=0.0), row(1, started=0.5, seconds=0.0)]
    gatherer = run_report.ReportGatherer()
    added: list[Any] = []
    monkeypatch.setattr(gatherer, "add", added.append)
    gatherer.add_rows([list(r) for r in rows])
    assert added == []
    data = gatherer.finish()
    assert data == gathered_one_by_one(rows)
    assert [r.id for r in data.failures] == [r.id for r in rows if r.status == "failed"][
        :run_report.FAILURES_SHOWN]
    assert data.failures_total == sum(r.status == "failed" for r in rows)
    assert len(data.slowest) == run_report.SLOWEST_SHOWN


@pytest.mark.parametrize("odd", [
    {"process": None}, {"seconds": None}, {"started": None}, {"status": "stopped"},
    {"status": "not_run"},
])
def test_a_chunk_with_a_row_that_did_not_run_or_was_not_timed_is_taken_row_by_row(
        odd: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    rows: list[list[Any]] = [list(r) for r in mixed_rows(20) if r.status != "not_run"]
    rows[5] = list(row(5, **odd))
    gatherer = run_report.ReportGatherer()
    added: list[Any] = []
    original = gatherer.add

    def counting(fields: Any) -> None:
        added.append(fields)
        original(fields)

    monkeypatch.setattr(gatherer, "add", counting)
    gatherer.add_rows(rows)
    assert added == rows
    assert gatherer.finish() == gathered_one_by_one([MiniBatchRow(*r) for r in rows])


@pytest.mark.parametrize("odd", [
    {"seconds": float("nan")}, {"seconds": 3e11}, {"seconds": -3e11},
    {"started": -1.0}, {"started": 3e11}, {"started": float("nan")},
])
def test_a_chunk_with_a_time_the_page_cannot_place_is_refused_as_add_refuses_it(
        odd: dict[str, Any]) -> None:
    rows = [list(r) for r in mixed_rows(20) if r.status != "not_run"]
    rows[3] = list(row(3, **odd))
    with pytest.raises(ValueError, match="mini-batch 3 "):
        run_report.ReportGatherer().add_rows(rows)


def test_a_chunk_with_a_row_of_another_length_is_refused() -> None:
    rows = [list(r) for r in mixed_rows(5)]
    rows[2] = rows[2][:-1]
    with pytest.raises(ValueError):
        run_report.ReportGatherer().add_rows(rows)


def test_failures_past_the_first_few_are_counted_over_chunks_not_kept() -> None:
    chunks = [[list(row(i, status="failed" if i % 2 else "succeeded"))
               for i in range(start, start + 60)] for start in (0, 60, 120)]
    gatherer = run_report.ReportGatherer()
    for chunk in chunks:
        gatherer.add_rows(chunk)
    data = gatherer.finish()
    assert [r.id for r in data.failures] == list(range(1, 100, 2))  # the first 50
    assert data.failures_total == 90


def test_equal_rows_in_two_chunks_are_ranked_in_the_order_they_came() -> None:
    """Rows of one id and time (a hand-edited CSV) keep their order across chunks."""
    first, second = row(5, shard=3, seconds=9.0), row(5, shard=1, seconds=9.0)
    gatherer = run_report.ReportGatherer()
    gatherer.add_rows([list(row(i, seconds=0.5)) for i in range(20, 40)])
    gatherer.add_rows([list(row(40, seconds=0.5)), list(first)])
    gatherer.add_rows([list(second)])
    slowest = gatherer.finish().slowest
    assert slowest[:2] == [first, second]


@pytest.mark.parametrize("odd", [
    {"seconds": run_report.MOST_SECONDS}, {"seconds": -run_report.MOST_SECONDS},
    {"started": run_report.MOST_SECONDS}, {"started": -0.001},
])
def test_a_chunk_with_a_time_on_the_edge_of_what_the_page_places_is_refused(
        odd: dict[str, Any]) -> None:
    rows = [list(row(i)) for i in range(4)]
    rows[1] = list(row(1, **odd))
    with pytest.raises(ValueError, match="mini-batch 1 "):
        run_report.ReportGatherer().add_rows(rows)
