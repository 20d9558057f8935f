"""The run report's page and charts, read back as a tree of elements: what each part shows,
that every text from the run is escaped, and that the page stays bounded."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest

from prs_runner.output import run_report_charts as charts
from prs_runner.output.run_report import (
    TIMELINE_BINS,
    TIMELINE_LIMIT,
    MiniBatchRow,
    ThroughputBin,
    gather,
)
from prs_runner.output.run_report_logs import LogExcerpt
from prs_runner.output.run_report_page import (
    ERROR_TEXT_CHARS,
    POLICY,
    TRACEBACK_CHARS,
    cut,
    escape,
    render_page,
    utc,
)
from tests.unit.test_run_report import lines_of

T0 = 1_767_225_600.0
HOSTILE = '</script><script>alert("x")</script><img src=x onerror=alert(1)> & "q"'
VOID = {"meta", "img", "br", "input", "link"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parts: list[Element | str] = field(default_factory=list)  # in document order

    @property
    def children(self) -> list[Element]:
        return [part for part in self.parts if isinstance(part, Element)]

    @property
    def text(self) -> str:
        return "".join(part for part in self.parts if isinstance(part, str))

    def all(self, tag: str, **attrs: str) -> list[Element]:
        found = [self] if self.tag == tag and all(
            self.attrs.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items()) else []
        for child in self.children:
            found += child.all(tag, **attrs)
        return found

    def full_text(self) -> str:
        return "".join(p if isinstance(p, str) else p.full_text() for p in self.parts)


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].parts.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].parts.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].parts.append(data)


def parse(text: str) -> Element:
    assert "XX" not in text, "no stray text"  # none of these tests' data holds it
    builder = TreeBuilder()
    builder.feed(text)
    builder.close()
    assert builder.stack == [builder.root], "every element is closed"
    return builder.root


def row(mb_id: int, shard: int = 0, process: int | None = 0, *, seconds: float | None = 1.0,
        status: str = "succeeded", started: float | None = T0, tries: int = 1,
        error: str = "", items: int = 2) -> MiniBatchRow:
    ok = status == "succeeded"
    return MiniBatchRow(mb_id, shard, process, tries, items, items if ok else 0,
                        0 if ok else items, seconds, status, error, started)


@pytest.mark.parametrize(("span", "step"), [
    (10, 2), (1, 0.2), (100, 20), (8, 1), (45, 10), (75, 10), (0.004, 0.0005), (3600, 500),
    (40, 5), (41, 10), (16, 2), (17, 5)])
def test_ticks_are_one_two_or_five_times_a_power_of_ten(span: float, step: float) -> None:
    assert charts.nice_step(span) == pytest.approx(step)


@pytest.mark.parametrize(("seconds", "label"), [
    (0, "0 s"), (0.25, "0.25 s"), (59.4, "59.4 s"), (12.345, "12.3 s"), (60, "1:00"),
    (125.4, "2:05"), (3599.6, "1:00:00"), (3725, "1:02:05"), (90061, "25:01:01")])
def test_offsets_read_as_seconds_minutes_or_hours(seconds: float, label: str) -> None:
    assert charts.offset_label(seconds) == label


@pytest.mark.parametrize(("seconds", "span", "x"), [(0, 10, 150), (10, 10, 950), (5, 10, 550),
                                                     (1, 3, 416.67), (0, 0, 150),
                                                     (0.25, 0.5, 550)])
def test_x_of_maps_time_onto_the_plot(seconds: float, span: float, x: float) -> None:
    assert charts.x_of(seconds, span) == x


def test_the_axis_has_a_line_and_label_per_tick() -> None:
    tree = parse(charts.axis(10, 5, 100))
    lines = tree.all("line", class_="grid")
    assert [(e.attrs["x1"], e.attrs["y1"], e.attrs["x2"], e.attrs["y2"]) for e in lines] == [
        (str(x), "5", str(x), "105") for x in (150.0, 310.0, 470.0, 630.0, 790.0, 950.0)]
    labels = tree.all("text", class_="tick")
    assert [e.text for e in labels] == ["0 s", "2 s", "4 s", "6 s", "8 s", "10 s"]
    assert {e.attrs["y"] for e in labels} == {"119"}


def timeline(rows: list[MiniBatchRow]) -> Element:
    data = gather(lines_of(rows))
    assert data.bounds is not None
    return parse(charts.timeline_svg(data, *data.bounds))


def test_the_timeline_has_one_row_per_process_and_a_bar_per_mini_batch() -> None:
    tree = timeline([row(0, 1, 0, started=T0, seconds=2.0),
                     row(1, 0, 1, started=T0 + 1, seconds=1.0, status="failed", tries=2),
                     row(2, 0, 1, started=T0 + 2, seconds=0.0, tries=3)])
    svg = tree.all("svg")[0]
    assert (svg.attrs["width"], svg.attrs["height"]) == ("960", str(2 * 20 + 24))
    assert svg.attrs["viewbox"] == "0 0 960 64"  # the parser lowers attribute names
    lanes = tree.all("g", class_="lane")
    assert [(g.attrs["data-shard"], g.attrs["data-process"]) for g in lanes] == [
        ("0", "1"), ("1", "0")]
    assert [g.all("text", class_="lane-name")[0].text for g in lanes] == [
        "shard 0 · process 1", "shard 1 · process 0"]
    assert [g.all("text", class_="lane-name")[0].all("title")[0].text for g in lanes] == [
        "2 mini-batches (1 failed), busy 1.0 s", "1 mini-batches (0 failed), busy 2.0 s"]
    bars = {g.attrs["data-shard"]: g.all("rect") for g in lanes}
    assert [b.attrs["class"] for b in bars["0"]] == ["mb failed retried", "mb succeeded retried"]
    assert [b.attrs["class"] for b in bars["1"]] == ["mb succeeded"]
    failed, instant = bars["0"]
    assert (failed.attrs["x"], failed.attrs["y"], failed.attrs["width"],
            failed.attrs["height"]) == ("550.0", "3", "400.0", "14")
    assert (instant.attrs["x"], instant.attrs["y"], instant.attrs["width"]) == (
        "950.0", "3", "0.5")  # an instant still shows
    assert bars["1"][0].attrs["y"] == "23"
    assert failed.all("title")[0].text == "mini-batch 1: failed, 1.000 s, 2 tries, started at 1 s"
    assert bars["1"][0].all("title")[0].text == (
        "mini-batch 0: succeeded, 2.000 s, 1 try, started at 0 s")
    rules = tree.all("line", class_="lane-rule")
    assert [(r.attrs["x1"], r.attrs["y1"], r.attrs["x2"]) for r in rules] == [
        ("150", "20", "950"), ("150", "40", "950")]
    assert tree.all("text", class_="lane-name")[1].attrs == {
        "class": "lane-name", "x": "144", "y": "34"}


def test_a_large_timeline_is_binned_per_process() -> None:
    count = TIMELINE_LIMIT + 1
    rows = [row(i, 0, i % 2, started=T0 + i // 2, seconds=0.5,
                status="failed" if i == 7 else "succeeded") for i in range(count)]
    tree = timeline(rows)
    lanes = tree.all("g", class_="lane")
    assert len(lanes) == 2 and not tree.all("rect", class_="mb succeeded")
    bins = [r for g in lanes for r in g.all("rect")]
    assert 0 < len(bins) <= 2 * TIMELINE_BINS
    assert {b.attrs["class"] for b in bins} == {"bin succeeded", "bin failed"}
    failed = tree.all("rect", class_="bin failed")
    assert len(failed) == 1 and failed[0].attrs["y"] == "23"  # process 1's row
    first = lanes[0].all("rect")[0]
    assert (first.attrs["x"], first.attrs["width"], first.attrs["height"]) == (
        "150.0", "6.67", "14")
    # 8 whole mini-batches of 0.5 s and a part of the 9th in the first 1,000.5/120 s
    assert first.attrs["fill-opacity"] == "0.52"
    assert first.all("title")[0].text == "0 s: 9 started, 0 failed, busy 52%"


def test_a_timeline_of_many_processes_has_fewer_bins_each() -> None:
    rows = [row(i, i % 400 // 8, i % 8, started=T0 + i % 7, seconds=0.5) for i in range(3200)]
    data = gather(lines_of(rows))
    assert data.bounds is not None
    text = charts.timeline_svg(data, *data.bounds)  # read with patterns: 12,000 elements
    assert text.count('<g class="lane"') == 400
    assert set(re.findall(r'<rect class="bin [a-z]+" x="[0-9.]+" y="[0-9]+" width="([0-9.]+)"',
                          text)) == {"26.67"}  # 800 px in 30 bins
    assert 400 <= text.count("<rect") <= 400 * 30


def test_a_binned_row_is_shaded_by_how_busy_it_was() -> None:
    rows = [row(i, started=T0 + i * 0.001, seconds=0.0001) for i in range(TIMELINE_LIMIT)]
    rows += [row(TIMELINE_LIMIT, started=T0 + 1000, seconds=3.0)]
    tree = timeline(rows)
    opacities = [r.attrs["fill-opacity"] for r in tree.all("rect")]
    assert opacities[0] == "0.1"  # 0.2 s busy of 8.36 s: drawn at the least shade
    assert opacities[-1] == "0.36"  # 3 s of 8.36 s


def test_throughput_stacks_failed_items_over_succeeded_ones() -> None:
    bins = [ThroughputBin(0.0, 2.0, 8, 0), ThroughputBin(2.0, 2.0, 2, 2),
            ThroughputBin(4.0, 2.0, 0, 0)]
    tree = parse(charts.throughput_svg(bins))
    assert tree.all("svg")[0].attrs["height"] == str(160 + 24)
    ok = tree.all("rect", class_="rate succeeded")
    bad = tree.all("rect", class_="rate failed")
    assert [(r.attrs["x"], r.attrs["y"], r.attrs["width"], r.attrs["height"]) for r in ok] == [
        ("150.0", "0.0", "266.67", "160.0"), ("416.67", "120.0", "266.66", "40.0")]
    assert [(r.attrs["y"], r.attrs["height"]) for r in bad] == [("80.0", "40.0")]
    assert ok[1].all("title")[0].text == "2 s: 1 items/s succeeded, 1 items/s failed"
    peaks = tree.all("text", class_="peak")
    assert [(p.text, p.attrs["y"]) for p in peaks] == [("4 items/s", "12"), ("0", "160")]


def test_throughput_of_nothing_is_an_empty_chart() -> None:
    tree = parse(charts.throughput_svg([]))
    assert tree.all("svg")[0].attrs["height"] == "24" and not tree.all("rect")
    idle = parse(charts.throughput_svg([ThroughputBin(0.0, 1.0, 0, 0)]))
    assert not idle.all("rect")
    assert idle.all("text", class_="peak")[0].text == "1e-09 items/s"


JOB: dict[str, Any] = {
    "stepName": "score", "status": "Failed", "reason": "TooManyErrors",
    "message": "3 > 2", "startTime": T0, "durationSeconds": 75.2, "fingerprint": "sha256:ab",
    "output": {"file": "out.txt", "rows": 1234},
    "firstError": {"type": "ValueError", "message": "bad", "traceback": "Traceback: here"},
}


def page(job: dict[str, Any], rows: list[MiniBatchRow],
         excerpts: dict[int, LogExcerpt] | None = None,
         outcomes: list[dict[str, Any]] | None = None) -> Element:
    return parse(render_page(job, outcomes or [], gather(lines_of(rows)), excerpts or {}))


def section(tree: Element, title: str) -> list[str]:
    """The texts of the elements after the <h2> TITLE, up to the next <h2>."""
    body = tree.all("body")[0].children
    start = next(i for i, e in enumerate(body) if e.tag == "h2" and e.text == title)
    end = next((i for i in range(start + 1, len(body)) if body[i].tag == "h2"), len(body))
    return [e.full_text() for e in body[start + 1:end]]


def test_every_text_from_the_run_is_escaped() -> None:
    job = {**JOB, "stepName": HOSTILE, "message": HOSTILE, "reason": HOSTILE,
           "firstError": {"type": HOSTILE, "message": HOSTILE, "traceback": HOSTILE},
           "output": {"file": HOSTILE, "rows": 1}, "fingerprint": HOSTILE}
    rows = [row(1, status="failed", error=HOSTILE), row(2, status=HOSTILE)]
    outcomes = [{"shard": HOSTILE, "status": HOSTILE, "reason": HOSTILE, "message": HOSTILE}]
    text = render_page(job, outcomes, gather(lines_of(rows)), {1: LogExcerpt(3, HOSTILE)})
    tree = parse(text)
    assert "<script" not in text and "<img" not in text
    assert not tree.all("script") and not tree.all("img")
    assert text.count(HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                      .replace('"', "&quot;")) >= 12
    assert tree.all("title")[0].text == f"{HOSTILE}: run report"


@pytest.mark.parametrize(("text", "shown"), [
    ("plain \t tab\r\nline", "plain \t tab\r\nline"),
    ("nul\x00 bel\x07 bs\x08 vt\x0b ff\x0c so\x0e", r"nul\x00 bel\x07 bs\x08 vt\x0b ff\x0c so\x0e"),
    ("esc\x1b[31m us\x1f", r"esc\x1b[31m us\x1f"),
    ("del\x7f c1\x80\x9f", r"del\x7f c1\x80\x9f"),
    (" ~\xa0é<&>\"'", " ~\xa0é&lt;&amp;&gt;&quot;&#x27;"),
])
def test_control_characters_are_shown_as_escapes(text: str, shown: str) -> None:
    assert escape(text) == shown


def test_no_control_character_reaches_the_page() -> None:
    noisy = "bad\x00\x1b\x07\x7f end"
    job = {**JOB, "stepName": noisy, "message": noisy,
           "firstError": {"type": noisy, "message": noisy, "traceback": noisy}}
    outcomes = [{"shard": 0, "status": "Failed", "reason": noisy, "message": noisy}]
    rows = [row(1, status="failed", error=noisy)]
    text = render_page(job, outcomes, gather(lines_of(rows)), {1: LogExcerpt(3, noisy)})
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", text)
    assert text.count(r"bad\x00\x1b\x07\x7f end") == 10


@pytest.mark.parametrize(("text", "most", "cut_text"), [
    ("abc", 3, "abc"), ("abcd", 3, "abc... (4 characters; see the worker's log)"),
    ("x" * 1234, 2, "xx... (1,234 characters; see the worker's log)"), ("", 0, "")])
def test_cut(text: str, most: int, cut_text: str) -> None:
    assert cut(text, most) == cut_text


def test_the_first_error_is_cut_as_each_failure_is() -> None:
    assert (ERROR_TEXT_CHARS, TRACEBACK_CHARS) == (2000, 20_000)
    job = {"firstError": {"type": "E", "message": "m" * 5_000_000, "traceback": "t" * 50_000}}
    text = render_page(job, [], gather(lines_of([row(0)])), {})
    assert len(text) < 40_000
    first = section(parse(text), "Failures")
    assert first == [f"First error: E: {'m' * 2000}... (5,000,000 characters; see the "
                     "worker's log)", f"{'t' * 20_000}... (50,000 characters; see the worker's "
                     "log)"]


def test_the_page_allows_no_script_and_fetches_nothing() -> None:
    tree = page(JOB, [row(0)])
    policy = tree.all("meta", http_equiv="Content-Security-Policy")
    assert [m.attrs["content"] for m in policy] == [POLICY]
    assert POLICY == "default-src 'none'; style-src 'unsafe-inline'"
    assert tree.all("meta", charset="utf-8")
    assert tree.all("html", lang="en")
    assert not [e for e in tree.all("link")] and not tree.all("script")


def test_the_top_says_the_outcome_and_the_counts() -> None:
    rows = [row(0), row(1, tries=2), row(2, status="failed"), row(3, process=None,
            status="not_run", started=None, seconds=None), row(4, status="stopped",
            started=None, seconds=None)]
    tree = page(JOB, rows)
    assert tree.all("h1")[0].text == "score"
    badge = tree.all("span")[0]
    assert (badge.attrs["class"], badge.text) == ("badge Failed", "Failed")
    assert tree.all("p")[0].full_text() == "Failed TooManyErrors: 3 > 2"
    assert tree.all("p", class_="note")[0].text == (
        "started 2026-01-01 00:00:00 UTC; took 1:15; output out.txt (1,234 rows); "
        "fingerprint sha256:ab")
    table = tree.all("table")[0]
    assert [[c.full_text() for c in r.children] for r in table.all("tr")] == [
        ["", "total", "succeeded", "failed", "stopped", "not run", "retried"],
        ["mini-batches", "5", "2", "1", "1", "1", "1"],
        ["items", "10", "4", "6"]]


@pytest.mark.parametrize(("job", "badge", "line", "facts"), [
    ({}, "badge Unknown", "Unknown", []),
    ({"status": "Succeeded", "reason": "Completed", "message": ""}, "badge Succeeded",
     "Succeeded Completed", []),
    ({"status": "Odd", "message": "m", "durationSeconds": 0}, "badge Unknown", "Odd m",
     ["took 0 s"]),
    ({"status": "Failed", "output": {"file": "f", "rows": None}}, "badge Failed", "Failed",
     ["output f (0 rows)"]),
])
def test_what_job_result_lacks_is_left_out(job: dict[str, Any], badge: str, line: str,
                                           facts: list[str]) -> None:
    tree = page(job, [])
    assert tree.all("h1")[0].text == "step"
    assert tree.all("title")[0].text == "step: run report"
    assert tree.all("span")[0].attrs["class"] == badge
    assert tree.all("p")[0].full_text().strip() == line
    notes = [p.text for p in tree.all("p", class_="note")]
    assert notes[:-2] == ["; ".join(facts)] if facts else notes[0].startswith("No mini-batch")


def test_utc_times() -> None:
    assert utc(T0 + 3661.5) == "2026-01-01 01:01:01 UTC"


def test_the_shards_table() -> None:
    outcomes = [{"shard": 0, "status": "succeeded", "processes": 4},
                {"shard": 1, "status": "failed", "reason": "NoProgress", "message": "stuck",
                 "processes": 2}]
    tree = page(JOB, [row(0)], outcomes=outcomes)
    assert section(tree, "Shards") == ["shardstatusprocessesreasonmessage0succeeded4"
                                       "1failed2NoProgressstuck"]
    assert "Shards" not in [h.text for h in page(JOB, [row(0)]).all("h2")]


def test_the_timeline_section_says_what_it_shows() -> None:
    rows = [row(0, started=T0 + 1), row(1, started=None)]
    texts = section(page(JOB, rows), "Timeline")
    assert texts[0] == ("Time after the first mini-batch started (2026-01-01 00:00:01 UTC); "
                        "one row per worker process. Hover a bar for its mini-batch.")
    assert texts[1] == "succeededfailedretried (more than one try)"
    assert texts[2] == ("1 mini-batches have no recorded start (written by an older runner) "
                        "and are not drawn.")
    assert section(page(JOB, rows), "Throughput")[0] == "Items finished per second."


def test_a_binned_timeline_says_so() -> None:
    rows = [row(i, started=T0 + i) for i in range(TIMELINE_LIMIT + 1)]
    texts = section(page(JOB, rows), "Timeline")
    assert texts[2] == ("2,001 mini-batches, more than 2,000: each process's row is cut in "
                        "120 time bins, shaded by how busy it was, red where a mini-batch that "
                        "started in the bin failed.")


def test_without_any_start_there_is_no_timeline() -> None:
    tree = page(JOB, [row(0, started=None)])
    assert section(tree, "Timeline") == [
        "No mini-batch has a recorded start time (none ran, or the output was written by an "
        "older runner)."]
    assert not tree.all("svg")


def test_the_slowest_table() -> None:
    tree = page(JOB, [row(0, 1, 2, seconds=0.5, items=1234, tries=2), row(1, seconds=2.25)])
    assert section(tree, "Slowest mini-batches") == [
        "mini-batchshardprocesssecondsitemstriesstatus"
        "1002.25021succeeded"
        "0120.5001,2342succeeded"]
    assert "Slowest mini-batches" not in [h.text for h in page(JOB, []).all("h2")]


def test_failures_link_their_log_line_and_show_the_traceback() -> None:
    rows = [row(4, 0, 1, status="failed", tries=2, error="ValueError: four"),
            row(5, 1, 0, status="failed", tries=1, error=""),
            row(6, 1, None, status="stopped", started=None, seconds=None, error="E: six")]
    excerpts = {4: LogExcerpt(10, "run() failed on mini-batch 4\nValueError: four")}
    tree = page(JOB, rows, excerpts)
    failures = tree.all("div", class_="failure")
    assert [f.attrs["id"] for f in failures] == ["mini-batch-4", "mini-batch-5", "mini-batch-6"]
    assert [f.all("h3")[0].text for f in failures] == [
        "mini-batch 4 (failed, shard 0 · process 1, 2 tries)",
        "mini-batch 5 (failed, shard 1 · process 0, 1 try)",
        "mini-batch 6 (stopped, shard 1, 1 try)"]
    assert [f.all("p")[0].text for f in failures] == [
        "ValueError: four", "no error recorded", "E: six"]
    links = [f.all("a") for f in failures]
    assert [[a.attrs["href"] for a in f] for f in links] == [
        ["../logs/0/1.log"], ["../logs/1/0.log"], []]
    assert failures[0].all("p", class_="note")[0].full_text() == (
        "Worker log: _prs/logs/0/1.log, line 10")
    assert failures[0].all("pre")[0].text == "run() failed on mini-batch 4\nValueError: four"
    assert failures[0].all("summary")[0].text == "traceback"
    assert failures[1].all("p", class_="note")[0].full_text() == (
        "Worker log: _prs/logs/1/0.log (no traceback of this mini-batch found in it).")
    assert not failures[1].all("pre") and not failures[2].all("p", class_="note")
    first = section(tree, "Failures")
    assert first[:2] == ["First error: ValueError: bad", "Traceback: here"]


def test_many_failures_are_cut_and_said_so() -> None:
    tree = page({}, [row(i, status="failed") for i in range(51)])
    texts = section(tree, "Failures")
    assert texts[0] == ("The first 50 of 51 failed or stopped mini-batches; all are in "
                        "processed_mini_batches.csv.")
    assert len(tree.all("div", class_="failure")) == 50


@pytest.mark.parametrize(("job", "texts"), [
    ({}, ["None."]),
    ({"firstError": {"type": "InitError", "message": "no model", "traceback": ""}},
     ["First error: InitError: no model"]),
])
def test_failures_without_failed_mini_batches(job: dict[str, Any], texts: list[str]) -> None:
    assert section(page(job, [row(0)]), "Failures") == texts


def test_a_small_timeline_whole() -> None:
    """Every part of a one-bar timeline, as written: the axis over a run shorter than a
    second, the row and its label, the bar of a retried mini-batch."""
    data = gather(lines_of([row(3, 0, 1, started=T0 + 0.125, seconds=0.25, tries=2)]))
    ticks = "".join(
        f'<line class="grid" x1="{x}" y1="0" x2="{x}" y2="20"/>'
        f'<text class="tick" x="{x}" y="34">{label}</text>'
        for x, label in [(150.0, "0 s"), (310.0, "0.1 s"), (470.0, "0.2 s"), (630.0, "0.3 s"),
                         (790.0, "0.4 s"), (950.0, "0.5 s")])
    assert charts.timeline_svg(data, T0, T0 + 0.5) == (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 960 44" width="960" height="44" '
        'role="img" aria-label="timeline of mini-batches per process">' + ticks +
        '<g class="lane" data-shard="0" data-process="1"><text class="lane-name" x="144" '
        'y="14">shard 0 · process 1<title>1 mini-batches (0 failed), busy 0.2 s</title></text>'
        '<line class="lane-rule" x1="150" y1="20" x2="950" y2="20"/><rect class="mb succeeded '
        'retried" x="350.0" y="3" width="400.0" height="14"><title>mini-batch 3: succeeded, '
        "0.250 s, 2 tries, started at 0.125 s</title></rect></g></svg>")


def test_bars_up_to_the_limit_and_a_row_for_a_process_without_times() -> None:
    rows = [row(i, 0, 0, started=T0 + i, seconds=1.0) for i in range(TIMELINE_LIMIT)]
    rows.append(row(TIMELINE_LIMIT, 0, 1, started=None))  # an older runner's row
    tree = timeline(rows)
    assert len(tree.all("rect", class_="mb succeeded")) == TIMELINE_LIMIT
    assert not tree.all("rect", class_="bin succeeded")
    lanes = tree.all("g", class_="lane")
    assert [len(g.all("rect")) for g in lanes] == [TIMELINE_LIMIT, 0]
    assert lanes[1].full_text() == "shard 0 · process 11 mini-batches (0 failed), busy 1.0 s"
    grid = tree.all("line", class_="grid")
    assert {(g.attrs["y1"], g.attrs["y2"]) for g in grid} == {("0", "40")}


def test_a_bin_busier_than_its_width_is_drawn_full() -> None:
    rows = [row(i, 0, 0, started=T0 + i * 0.01, seconds=30.0) for i in range(TIMELINE_LIMIT)]
    rows.append(row(TIMELINE_LIMIT, 0, 0, started=T0 + 1190, seconds=10.0, status="failed"))
    tree = timeline(rows)  # 1,200 s in 120 bins of 10 s
    cells = tree.all("rect")
    assert cells[0].attrs["fill-opacity"] == "1.0"
    assert cells[0].all("title")[0].text == "0 s: 1000 started, 0 failed, busy 100%"
    last = cells[-1]
    assert (last.attrs["class"], last.attrs["x"], last.attrs["fill-opacity"]) == (
        "bin failed", "943.33", "1.0")
    assert last.all("title")[0].text == "19:50: 1 started, 1 failed, busy 100%"
    third = cells[2]
    assert (third.attrs["x"], third.attrs["fill-opacity"]) == ("163.33", "1.0")


def test_the_throughput_chart_whole() -> None:
    bins = [ThroughputBin(0.0, 2.0, 2, 0), ThroughputBin(2.0, 1.5, 3, 3)]
    text = charts.throughput_svg(bins)
    assert text.startswith('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 960 184" '
                           'width="960" height="184" role="img" '
                           'aria-label="items finished per second">')
    tree = parse(text)
    assert [(p.attrs["x"], p.text) for p in tree.all("text", class_="peak")] == [
        ("144", "4 items/s"), ("144", "0")]
    assert tree.all("line", class_="grid")[0].attrs["y1"] == "0"
    rects = [(r.attrs["class"], r.attrs["x"], r.attrs["y"], r.attrs["width"], r.attrs["height"])
             for r in tree.all("rect")]
    assert rects == [("rate succeeded", "150.0", "120.0", "457.14", "40.0"),
                     ("rate succeeded", "607.14", "80.0", "342.86", "80.0"),
                     ("rate failed", "607.14", "0.0", "342.86", "80.0")]
    assert charts.throughput_svg([]) == (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 960 24" width="960" height="24" '
        'role="img" aria-label="throughput"></svg>')


def test_a_rate_that_is_not_round_keeps_two_decimals() -> None:
    tree = parse(charts.throughput_svg([ThroughputBin(0.0, 3.0, 1, 0),
                                        ThroughputBin(3.0, 3.0, 3, 1)]))
    heights = [(r.attrs["y"], r.attrs["height"]) for r in tree.all("rect")]
    assert heights == [("120.0", "40.0"), ("40.0", "120.0"), ("0.0", "40.0")]
    odd = parse(charts.throughput_svg([ThroughputBin(0.0, 7.0, 1, 2),
                                       ThroughputBin(7.0, 7.0, 3, 0)]))
    assert [(r.attrs["y"], r.attrs["height"]) for r in odd.all("rect")] == [
        ("106.67", "53.33"), ("0.0", "106.67"), ("0.0", "160.0")]


def test_the_page_is_one_document_start_to_end() -> None:
    text = render_page({}, [], gather(lines_of([row(0)])), {})
    assert text.startswith('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                           f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
                           "<title>step: run report</title><style>")
    assert text.endswith("</table></body></html>\n") or text.endswith("</p></body></html>\n")
    assert text.count("</body></html>") == 1
    assert "</DIV>" not in text and text.count("<div") == text.count("</div>")


def test_the_summary_whole() -> None:
    job = {"stepName": "s", "status": "Failed", "reason": "X", "message": "went wrong X"}
    text = render_page(job, [], gather(lines_of([row(0, status="failed")])), {})
    summary = text.split("</style></head><body>", 1)[1].split("<h2>", 1)[0]
    assert summary == (
        '<h1>s</h1><p><span class="badge Failed">Failed</span> X: went wrong X</p><table>'
        '<tr><th></th><th class="n">total</th><th class="n">succeeded</th><th class="n">'
        'failed</th><th class="n">stopped</th><th class="n">not run</th><th class="n">'
        'retried</th></tr><tr><th>mini-batches</th><td class="n">1</td><td class="n">0</td>'
        '<td class="n">1</td><td class="n">0</td><td class="n">0</td><td class="n">0</td>'
        '</tr><tr><th>items</th><td class="n">2</td><td class="n">0</td><td class="n">2</td>'
        "</tr></table>")


def test_times_are_in_utc_whatever_the_machine_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert utc(T0) == "2026-01-01 00:00:00 UTC"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_shard_outcome_without_its_fields_shows_empty_cells() -> None:
    text = render_page(JOB, [{}], gather(lines_of([row(0)])), {})
    assert ('<tr><td class="n"></td><td></td><td class="n"></td><td></td><td></td></tr>'
            ) in text


def test_the_page_draws_the_throughput_of_the_run() -> None:
    tree = page(JOB, [row(i, started=T0 + i) for i in range(12)])
    rates = tree.all("rect", class_="rate succeeded")
    assert len(rates) == 10  # 12 mini-batches: the fewest bins, each with some
    assert tree.all("svg")[1].attrs["aria-label"] == "items finished per second"


def test_a_failure_entry_whole() -> None:
    text = render_page({}, [], gather(lines_of([
        row(6, 1, None, status="stopped", started=None, seconds=None, error="E: six"),
        row(7, 2, 3, status="failed", error="E: seven")])), {})
    assert ('<div class="failure" id="mini-batch-6"><h3>mini-batch 6 (stopped, shard 1, 1 try)'
            "</h3><p>E: six</p></div>") in text
    assert ('<div class="failure" id="mini-batch-7"><h3>mini-batch 7 (failed, shard 2 · '
            'process 3, 1 try)</h3><p>E: seven</p><p class="note">Worker log: <a href="../logs/'
            '2/3.log">_prs/logs/2/3.log</a> (no traceback of this mini-batch found in it).</p>'
            "</div>") in text


def test_bar_widths_keep_two_decimals() -> None:
    tree = timeline([row(0, started=T0, seconds=1.0), row(1, started=T0 + 2, seconds=1.0)])
    assert [r.attrs["width"] for r in tree.all("rect")] == ["266.67", "266.67"]
    rates = parse(charts.throughput_svg([ThroughputBin(float(n), 1.0, 1, 0) for n in range(3)]))
    assert [r.attrs["width"] for r in rates.all("rect")] == ["266.67", "266.66", "266.67"]


def test_a_timeline_at_the_limit_has_bars_and_notes_are_paragraphs() -> None:
    at_limit = [row(i, started=T0 + i) for i in range(TIMELINE_LIMIT)]
    assert len(section(page(JOB, at_limit), "Timeline")) == 3  # text, legend, the chart
    over = [*at_limit, row(TIMELINE_LIMIT, started=T0), row(9999, started=None)]
    texts = section(page(JOB, over), "Timeline")
    assert texts[2].startswith("2,001 mini-batches, more than 2,000")
    assert texts[3] == ("1 mini-batches have no recorded start (written by an older runner) "
                        "and are not drawn.")
