"""The metrics entry scripts log through Azure's Run, as the run report gathers them."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from prs_runner.azure_names import core
from prs_runner.execution.worker import MetricTally
from prs_runner.output import run_metrics
from prs_runner.output.run_metrics import (
    METRICS_LOGGER,
    METRICS_MARK_ENV,
    MetricSummary,
    MetricTable,
    add_records,
    metric_records,
    numeric,
    summaries,
)
from prs_runner.output.run_report_page import metrics_section
from prs_runner.output.run_report_writer import metric_logs

TIME = "2026-12-02 10:00:00,123"


def line(record: Any, level: str = "INFO", logger: str = "prs.metrics",
         where: str = "[shard 1 process 0]") -> str:
    text = record if isinstance(record, str) else json.dumps(record)
    return f"{TIME} {level} {logger} {where} {text}\n"


@pytest.mark.parametrize(("text", "records"), [
    (line({"metric": "a", "value": 1}), [{"metric": "a", "value": 1}]),
    (line({"tag": "t", "value": "x"}), [{"tag": "t", "value": "x"}]),
    (line({"metric": "a", "value": 1}, level="WARNING"), [{"metric": "a", "value": 1}]),
    (line({"metric": "a", "value": 1}, where="[shard 10 process 12]"),
     [{"metric": "a", "value": 1}]),
    (line({"metric": "a", "value": 1}).rstrip("\n") + "  \n", [{"metric": "a", "value": 1}]),
    # not the offline run's records
    (line({"metric": "a", "value": 1}, logger="prs.worker"), []),
    (line({"metric": "a", "value": 1}, logger="myprs.metrics"), []),
    (line({"metric": "a", "value": 1}, where="[shard x process 0]"), []),
    (line({"metric": "a", "value": 1}, where="[shard 1 process]"), []),
    ("2026-12-02 10:00:00 INFO prs.metrics [shard 1 process 0] {\"metric\": \"a\"}\n", []),
    (" " + line({"metric": "a", "value": 1}), []),
    (line({"metric": "a", "value": 1}) .replace(TIME, "x" + TIME), []),
    (line({"metric": "a", "value": 1}) + "trailing", [{"metric": "a", "value": 1}]),
    (line("{not json}"), [None]),
    (line("[1, 2]"), [None]),
    (line({"name": "a", "value": 1}), [None]),
    (line({"metric": 3, "value": 1}), [None]),
    (line({"metric": "a", "value": 1}).rstrip("\n")[:-3] + "\n", [None]),  # cut short
    (line({"metric": "a", "value": 1}).rstrip("\n") + " x\n", [None]),
    ("print output {\"metric\": \"a\"}\n", []),
])
def test_which_log_lines_are_metric_records(text: str, records: list[Any]) -> None:
    assert list(metric_records(text.splitlines(keepends=True))) == records


@pytest.mark.parametrize(("value", "number"), [
    (1, 1.0), (2.5, 2.5), (-3, -3.0), (0, 0.0),
    (True, None), (False, None), ("7", None), (None, None), ([1], None),
    (float("nan"), None), (float("inf"), None), (10**400, None), (-(10**400), None),
    (10**300, 1e300),
    ({"step": 2, "value": 4}, 4.0), ({"step": 2, "value": "x"}, None),
    ({"step": 2, "value": 4, "more": 1}, None), ({"value": 4}, None),
])
def test_what_counts_as_a_number(value: Any, number: float | None) -> None:
    assert numeric(value) == number


def records(*pairs: tuple[str, Any]) -> list[dict[str, Any]]:
    return [{"metric": name, "value": value} for name, value in pairs]


def test_values_of_a_name_are_counted_and_the_last_kept_in_log_order() -> None:
    table = add_records(MetricTable(), records(("loss", 3), ("loss", 1.5), ("loss", 2)))
    add_records(table, records(("loss", "n/a"), ("acc", True)))
    add_records(table, [{"tag": "loss", "value": "v1"}])
    assert summaries(table) == [
        MetricSummary("metric", "acc", 1, True, None),
        MetricSummary("metric", "loss", 4, "n/a", (1.5, 3.0)),
        MetricSummary("tag", "loss", 1, "v1", None),
    ]
    assert table.left_out == 0


def test_a_number_after_values_that_are_not_starts_the_range() -> None:
    table = add_records(MetricTable(), records(("x", "a"), ("x", 5), ("x", 9), ("x", -1)))
    assert summaries(table) == [MetricSummary("metric", "x", 4, -1, (-1.0, 9.0))]


def test_names_past_the_limit_are_counted_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_metrics, "MOST_NAMES", 2)
    table = add_records(MetricTable(), records(("a", 1), ("b", 1), ("c", 1), ("a", 2),
                                               ("d", 1), ("c", 2)))
    assert [(s.name, s.count) for s in summaries(table)] == [("a", 2), ("b", 1)]
    assert table.left_out == 3


def test_the_section_shows_each_name_escaped_and_its_figures() -> None:
    table = add_records(MetricTable(), records(("<b>loss</b>", 3), ("<b>loss</b>", 1.25),
                                               ("note", "<script>x</script>")))
    add_records(table, [{"tag": "model", "value": "v1"}])
    html = metrics_section(table)
    assert html.startswith("<h2>Metrics</h2>")
    assert ('<tr><td>&lt;b&gt;loss&lt;/b&gt;</td><td>metric</td><td class="n">2</td>'
            '<td>1.25</td><td class="n">1.25</td><td class="n">3</td></tr>') in html
    assert ('<tr><td>note</td><td>metric</td><td class="n">1</td>'
            '<td>&quot;&lt;script&gt;x&lt;/script&gt;&quot;</td><td class="n"></td>'
            '<td class="n"></td></tr>') in html
    assert '<tr><td>model</td><td>tag</td><td class="n">1</td><td>&quot;v1&quot;</td>' in html
    assert "more values" not in html
    assert html.index("&lt;b&gt;loss") < html.index("<td>note") < html.index("<td>model")


def test_a_long_value_is_cut_and_names_left_out_are_said() -> None:
    table = add_records(MetricTable(), records(("big", "x" * 1000)))
    table.left_out = 1234
    html = metrics_section(table)
    assert "1,234 more values, of names past the first 200, are not shown." in html
    shown = html.split("<td>big</td>", 1)[1].split("</td>")[2]
    assert len(shown) < 260 and shown.startswith("<td>&quot;xxx")


def test_records_are_read_past_lines_that_are_not() -> None:
    lines = [line({"metric": "a", "value": 1}), "print output\n", line("{bad json"),
             line({"metric": "b", "value": 2}), line([1]), line({"tag": "c", "value": 3})]
    assert [r and (r.get("metric") or r.get("tag")) for r in metric_records(lines)] == [
        "a", None, "b", None, "c"]


def test_the_whole_section() -> None:
    table = add_records(MetricTable(), records(("a", 1), ("b", "x")))
    assert metrics_section(table) == (
        '<h2>Metrics</h2><p class="note">What the entry script logged with Azure\'s '
        "<code>Run.log</code>, <code>log_row</code>, <code>log_list</code>, "
        "<code>log_table</code> and <code>tag</code>, gathered from the workers' logs "
        "(the last value: in shard, process and log order).</p>"
        '<table><tr><th>name</th><th>kind</th><th class="n">values</th><th>last value</th>'
        '<th class="n">smallest</th><th class="n">largest</th></tr>'
        '<tr><td>a</td><td>metric</td><td class="n">1</td><td>1</td><td class="n">1</td>'
        '<td class="n">1</td></tr>'
        '<tr><td>b</td><td>metric</td><td class="n">1</td><td>&quot;x&quot;</td>'
        '<td class="n"></td><td class="n"></td></tr></table>')


def test_unreadable_lines_are_counted_and_said() -> None:
    table = add_records(MetricTable(), [None, *records(("a", 1)), None])
    assert table.unreadable == 2 and [s.name for s in summaries(table)] == ["a"]
    html = metrics_section(table)
    assert ("2 metric lines could not be read (a value longer than the 64 KiB a log line is "
            "read to): they are in the workers' logs.") in html
    table.left_out = 3
    assert ('<p class="note">3 more values, of names past the first 200, are not shown.</p>'
            '<p class="note">2 metric lines could not be read (a value longer than the 64 KiB '
            "a log line is read to): they are in the workers' logs.</p><table>"
            ) in metrics_section(table)
    only = metrics_section(add_records(MetricTable(), [None]))
    assert "1 metric lines could not be read" in only and "<td>" not in only


def test_a_long_name_is_cut() -> None:
    html = metrics_section(add_records(MetricTable(), records(("n" * 5000, 1))))
    assert "n" * 200 + "... (5,000 characters" in html and "n" * 201 not in html


def test_a_huge_integer_is_shown_not_ranged() -> None:
    table = add_records(MetricTable(), records(("big", 10**400), ("big", 2)))
    assert summaries(table) == [MetricSummary("metric", "big", 2, 2, (2.0, 2.0))]
    assert "<td>big</td>" in metrics_section(table)


def test_no_metrics_no_section() -> None:
    assert metrics_section(MetricTable()) == ""


@pytest.mark.parametrize(("outcomes", "logs"), [
    ([], []),
    ([{"shard": 0, "metricsLogged": []}], []),
    ([{"shard": 1, "metricsLogged": [2, 0]}, {"shard": 0, "metricsLogged": [1]}],
     [(0, 1), (1, 0), (1, 2)]),
    ([{"shard": 0, "metricsLogged": [1, 1]}, {"shard": 0, "metricsLogged": [1]}], [(0, 1)]),
    ([{"shard": 0}], []),  # written before the field existed
    ([{"shard": "0", "metricsLogged": [1]}], []),  # hand-edited: not numbers
    ([{"shard": True, "metricsLogged": [1]}], []),
    ([{"shard": 0, "metricsLogged": "1"}], []),
    ([{"shard": 0, "metricsLogged": [1, "2", None, False, 3]}], [(0, 1), (0, 3)]),
    ([{"metricsLogged": [1]}], []),
])
def test_only_the_logs_of_workers_that_logged_metrics_are_read(
        outcomes: list[dict[str, Any]], logs: list[tuple[int, int]]) -> None:
    assert metric_logs(outcomes) == logs


def test_the_worker_and_the_offline_run_name_one_logger() -> None:
    assert METRICS_LOGGER == core.METRICS_LOGGER


def test_a_worker_marks_its_log_at_its_first_metric(tmp_path: Path) -> None:
    mark = tmp_path / "0.metrics"
    tally = MetricTally.installed({METRICS_MARK_ENV: str(mark)})
    logger = logging.getLogger(METRICS_LOGGER)
    try:
        logging.getLogger("prs.worker").warning("not a metric")
        assert not mark.exists()
        logger.warning("one")
        assert mark.exists() and mark.read_bytes() == b""
        mark.unlink()
        logger.warning("two")  # marked once: the mark is not written again
        assert not mark.exists() and tally.count == 2
    finally:
        logger.removeFilter(tally)


def test_a_mark_that_cannot_be_written_does_not_fail_the_scripts_call(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link.metrics").symlink_to(tmp_path / "real" / "x")  # never followed
    for mark in [tmp_path / "missing" / "0.metrics", tmp_path / "link.metrics"]:
        tally = MetricTally.installed({METRICS_MARK_ENV: str(mark)})
        try:
            logging.getLogger(METRICS_LOGGER).warning("logged")
            assert tally.count == 1
        finally:
            logging.getLogger(METRICS_LOGGER).removeFilter(tally)
    assert not (tmp_path / "real" / "x").exists()
