"""The run report as one HTML page: data in, text out. Pure.

The page is self-contained (styles inline, charts as inline SVG, no script, nothing fetched)
so that it opens offline, from a copied output or an object store's browser alike. Every text
from the run (names, messages, tracebacks, log lines) is escaped, and the page's
Content-Security-Policy forbids scripts outright: an error message holding `<script>` is
shown, never run.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prs_runner.output.run_metrics import MOST_NAMES, MetricTable, summaries
from prs_runner.output.run_report import (
    FAILURES_SHOWN,
    TIMELINE_LIMIT,
    MiniBatchRow,
    ReportData,
    throughput,
    timeline_bins,
)
from prs_runner.output.run_report_charts import offset_label, throughput_svg, timeline_svg
from prs_runner.output.run_report_logs import LogExcerpt, log_path

CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
ERROR_TEXT_CHARS = 2000  # of the first error's message, as of each failure's (the merge's cut)
TRACEBACK_CHARS = 20_000  # of the first error's traceback


def escape(text: str) -> str:
    """TEXT from the run as HTML text: markup escaped, and control characters (NUL, ESC,
    BEL..., which HTML forbids) shown as escapes, \\x1b; tab and line ends kept."""
    return CONTROL_CHARACTERS.sub(lambda found: f"\\x{ord(found.group()):02x}",
                                  html.escape(text))


def cut(text: str, most: int) -> str:
    if len(text) <= most:
        return text
    return f"{text[:most]}... ({len(text):,} characters; see the worker's log)"


POLICY = "default-src 'none'; style-src 'unsafe-inline'"
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#1d2329}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;text-align:left;
border-bottom:1px solid #e3e6e8;vertical-align:top}th{font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.Succeeded{background:#2e7d32}.Failed{background:#c62828}.Unknown{background:#6b7680}
.note{color:#56606a}pre{background:#f5f6f7;padding:8px;overflow-x:auto;font-size:12px}
svg text{font-size:11px;fill:#3c4650}.lane-name,.peak{text-anchor:end}.tick{text-anchor:middle}
.grid{stroke:#eceef0}.lane-rule{stroke:#f3f4f5}
.succeeded{fill:#4caf50}.failed{fill:#e53935}.stopped{fill:#fb8c00}
.mb.retried{stroke:#5d4037;stroke-width:1.5}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;
vertical-align:-2px}.legend .ok{background:#4caf50}.legend .bad{background:#e53935}
.legend .again{background:#4caf50;outline:2px solid #5d4037;outline-offset:-2px}
"""


def render_page(job: Mapping[str, Any], outcomes: Sequence[Mapping[str, Any]], data: ReportData,
                excerpts: Mapping[int, LogExcerpt], metrics: MetricTable | None = None) -> str:
    """The whole page. JOB is job_result.json ({} when there is none), OUTCOMES the shards'
    outcomes, EXCERPTS the failures' tracebacks found in the workers' logs, by mini-batch,
    METRICS what the entry script logged through Azure's Run."""
    name = str(job.get("stepName") or "step")
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">',
        f"<title>{escape(name)}: run report</title><style>{STYLE}</style></head><body>",
        summary_section(job, data), metrics_section(metrics or MetricTable()),
        shards_section(outcomes), timeline_section(data),
        slowest_section(data.slowest), failures_section(job, data, excerpts),
        "</body></html>\n"])


def summary_section(job: Mapping[str, Any], data: ReportData) -> str:
    status = str(job.get("status") or "Unknown")
    badge_class = status if status in ("Succeeded", "Failed") else "Unknown"
    why = f"{job.get('reason') or ''}: {job.get('message') or ''}".strip(": ")
    states = ("succeeded", "failed", "stopped", "not_run")
    head = "".join(f'<th class="n">{state.replace("_", " ")}</th>' for state in states)
    batches = "".join(f'<td class="n">{data.by_status[state]:,}</td>' for state in states)
    rows = (f'<tr><th></th><th class="n">total</th>{head}<th class="n">retried</th></tr>'
            f'<tr><th>mini-batches</th><td class="n">{data.mini_batches:,}</td>{batches}'
            f'<td class="n">{data.retried:,}</td></tr>'
            f'<tr><th>items</th><td class="n">{data.items:,}</td>'
            f'<td class="n">{data.items_succeeded:,}</td>'
            f'<td class="n">{data.items_failed:,}</td></tr>')
    return (f"<h1>{escape(str(job.get('stepName') or 'step'))}</h1>"
            f'<p><span class="badge {badge_class}">{escape(status)}</span> '
            f"{escape(why)}</p>{run_facts(job)}<table>{rows}</table>")


def run_facts(job: Mapping[str, Any]) -> str:
    facts = []
    if job.get("startTime"):
        facts.append(f"started {utc(float(job['startTime']))}")
    if job.get("durationSeconds") is not None:
        facts.append(f"took {offset_label(float(job['durationSeconds']))}")
    output = job.get("output") or {}
    if output.get("file"):
        facts.append(f"output {output['file']} ({int(output.get('rows') or 0):,} rows)")
    if job.get("fingerprint"):
        facts.append(f"fingerprint {job['fingerprint']}")
    return f'<p class="note">{escape("; ".join(facts))}</p>' if facts else ""


def utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def shards_section(outcomes: Sequence[Mapping[str, Any]]) -> str:
    if not outcomes:
        return ""
    rows = "".join(
        f"<tr><td class=\"n\">{escape(str(o.get('shard', '')))}</td>"
        f"<td>{escape(str(o.get('status', '')))}</td>"
        f"<td class=\"n\">{escape(str(o.get('processes') or ''))}</td>"
        f"<td>{escape(str(o.get('reason') or ''))}</td>"
        f"<td>{escape(str(o.get('message') or ''))}</td></tr>" for o in outcomes)
    return ("<h2>Shards</h2><table><tr><th class=\"n\">shard</th><th>status</th>"
            "<th class=\"n\">processes</th><th>reason</th>"
            f"<th>message</th></tr>{rows}</table>")


def timeline_section(data: ReportData) -> str:
    bounds = data.bounds
    if bounds is None:
        return ("<h2>Timeline</h2><p class=\"note\">No mini-batch has a recorded start time "
                "(none ran, or the output was written by an older runner).</p>")
    start, end = bounds
    notes = []
    if len(data.spans) > TIMELINE_LIMIT:
        notes.append(f"{len(data.spans):,} mini-batches, more than {TIMELINE_LIMIT:,}: each "
                     f"process's row is cut in {timeline_bins(len(data.lanes))} time bins, "
                     "shaded by how busy it was, red where a mini-batch that started in the "
                     "bin failed.")
    if data.untimed:
        notes.append(f"{data.untimed:,} mini-batches have no recorded start (written by an "
                     "older runner) and are not drawn.")
    legend = ('<p class="legend"><span class="ok"></span>succeeded<span class="bad"></span>'
              'failed<span class="again"></span>retried (more than one try)</p>')
    note = "".join(f'<p class="note">{escape(text)}</p>' for text in notes)
    return (f"<h2>Timeline</h2><p class=\"note\">Time after the first mini-batch started "
            f"({utc(start)}); one row per worker process. Hover a bar for its mini-batch."
            f"</p>{legend}{note}{timeline_svg(data, start, end)}"
            f"<h2>Throughput</h2><p class=\"note\">Items finished per second.</p>"
            f"{throughput_svg(throughput(data.spans, start, end))}")


METRIC_VALUE_CHARS = 200  # of a last value, as JSON
METRIC_NAME_CHARS = 200


def metrics_section(table: MetricTable) -> str:
    shown = summaries(table)
    if not shown and not table.unreadable:
        return ""
    rows = "".join(
        f"<tr><td>{escape(cut(s.name, METRIC_NAME_CHARS))}</td><td>{s.kind}</td>"
        f"<td class=\"n\">{s.count:,}</td>"
        f"<td>{escape(cut(json.dumps(s.last), METRIC_VALUE_CHARS))}</td>"
        f"<td class=\"n\">{'' if s.numbers is None else f'{s.numbers[0]:g}'}</td>"
        f"<td class=\"n\">{'' if s.numbers is None else f'{s.numbers[1]:g}'}</td></tr>"
        for s in shown)
    more = (f'<p class="note">{table.left_out:,} more values, of names past the first '
            f"{MOST_NAMES}, are not shown.</p>" if table.left_out else "")
    if table.unreadable:
        more += (f'<p class="note">{table.unreadable:,} metric lines could not be read (a value '
                 "longer than the 64 KiB a log line is read to): they are in the workers' logs."
                 "</p>")
    return ("<h2>Metrics</h2><p class=\"note\">What the entry script logged with Azure's "
            "<code>Run.log</code>, <code>log_row</code>, <code>log_list</code>, "
            "<code>log_table</code> and <code>tag</code>, gathered from the workers' logs "
            "(the last value: in shard, process and log order).</p>"
            f"{more}<table><tr><th>name</th><th>kind</th><th class=\"n\">values</th>"
            "<th>last value</th><th class=\"n\">smallest</th><th class=\"n\">largest</th>"
            f"</tr>{rows}</table>")


def slowest_section(slowest: list[MiniBatchRow]) -> str:
    if not slowest:
        return ""
    rows = "".join(
        f"<tr><td class=\"n\">{row.id}</td><td class=\"n\">{row.shard}</td>"
        f"<td class=\"n\">{row.process}</td><td class=\"n\">{row.seconds:.3f}</td>"
        f"<td class=\"n\">{row.items:,}</td><td class=\"n\">{row.tries}</td>"
        f"<td>{escape(row.status)}</td></tr>" for row in slowest)
    return ("<h2>Slowest mini-batches</h2><table><tr><th class=\"n\">mini-batch</th>"
            "<th class=\"n\">shard</th><th class=\"n\">process</th><th class=\"n\">seconds</th>"
            "<th class=\"n\">items</th><th class=\"n\">tries</th><th>status</th></tr>"
            f"{rows}</table>")


def failures_section(job: Mapping[str, Any], data: ReportData,
                     excerpts: Mapping[int, LogExcerpt]) -> str:
    first = job.get("firstError") or {}
    if not data.failures_total and not first:
        return "<h2>Failures</h2><p class=\"note\">None.</p>"
    parts = ["<h2>Failures</h2>"]
    if first:
        message = cut(str(first.get("message")), ERROR_TEXT_CHARS)
        parts.append(f"<p>First error: <b>{escape(str(first.get('type')))}</b>: "
                     f"{escape(message)}</p>")
        if first.get("traceback"):
            parts.append(f"<pre>{escape(cut(str(first['traceback']), TRACEBACK_CHARS))}</pre>")
    if data.failures_total > len(data.failures):
        parts.append(f'<p class="note">The first {FAILURES_SHOWN} of '
                     f"{data.failures_total:,} failed or stopped mini-batches; all are in "
                     "processed_mini_batches.csv.</p>")
    parts.extend(failure_entry(row, excerpts.get(row.id)) for row in data.failures)
    return "".join(parts)


def failure_entry(row: MiniBatchRow, excerpt: LogExcerpt | None) -> str:
    where = (f"shard {row.shard} · process {row.process}" if row.process is not None
             else f"shard {row.shard}")
    tries = f"{row.tries} {'try' if row.tries == 1 else 'tries'}"
    head = (f'<div class="failure" id="mini-batch-{row.id}"><h3>mini-batch {row.id} '
            f"({escape(row.status)}, {where}, {tries})</h3>"
            f"<p>{escape(row.error) or 'no error recorded'}</p>")
    if row.process is None:
        return head + "</div>"
    path = log_path(row.shard, row.process)
    link = f"../{path.removeprefix('_prs/')}"  # the page is in _prs/report/
    if excerpt is None:
        return (head + f'<p class="note">Worker log: <a href="{escape(link)}">{escape(path)}'
                "</a> (no traceback of this mini-batch found in it).</p></div>")
    return (head + f'<p class="note">Worker log: <a href="{escape(link)}">{escape(path)}</a>, '
            f"line {excerpt.line}</p><details><summary>traceback</summary>"
            f"<pre>{escape(excerpt.text)}</pre></details></div>")
