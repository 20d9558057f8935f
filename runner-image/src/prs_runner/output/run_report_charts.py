"""The run report's charts as inline SVG text. Pure.

Plain SVG written here, not a plotting library: the page stays one small file that opens
offline, with no script to run, and every shape can be checked by a test. Every text that
comes from the run goes through `escape`.
"""

from __future__ import annotations

import math
from html import escape

from prs_runner.output.run_report import (
    STATUS_CODES,
    TIMELINE_LIMIT,
    Bin,
    ReportData,
    ThroughputBin,
    lane_bins,
    timeline_bins,
)

WIDTH = 960
LABEL_WIDTH = 150  # the lane names left of the plot
ROW_HEIGHT = 20
AXIS_HEIGHT = 24
CHART_HEIGHT = 160
PLOT_WIDTH = WIDTH - LABEL_WIDTH - 10
STATUS_CLASS = {code: name for name, code in STATUS_CODES.items()}


def nice_step(span: float, most: int = 8) -> float:
    """A tick step of 1, 2 or 5 times a power of ten giving at most MOST ticks over SPAN."""
    raw = max(span, 1e-6) / most
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5):
        if factor * power >= raw:
            return factor * power
    return 10 * power


def offset_label(seconds: float) -> str:
    """'45 s', '2:05' (minutes), '1:02:05' (hours) after the run's start."""
    if seconds < 60:
        return f"{seconds:.3g} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}:{whole % 60:02d}"
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def x_of(seconds: float, span: float) -> float:
    return round(LABEL_WIDTH + PLOT_WIDTH * seconds / max(span, 1e-9), 2)


def axis(span: float, top: float, height: float) -> str:
    """Vertical grid lines with their labels under them."""
    step = nice_step(span)
    parts = []
    for number in range(int(span / step) + 1):
        x = x_of(number * step, span)
        parts.append(f'<line class="grid" x1="{x}" y1="{top}" x2="{x}" y2="{top + height}"/>'
                     f'<text class="tick" x="{x}" y="{top + height + 14}">'
                     f'{offset_label(number * step)}</text>')
    return "".join(parts)


def svg(height: float, label: str, body: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
            f'width="{WIDTH}" height="{height}" role="img" aria-label="{escape(label)}">'
            f"{body}</svg>")


def timeline_svg(data: ReportData, start: float, end: float) -> str:
    """One row per worker process (shard and process): each mini-batch a bar from its start
    to its end, coloured by outcome, outlined when it took more than one try. Over
    TIMELINE_LIMIT mini-batches, each row is cut in time bins instead, shaded
    by how busy the process was, red where mini-batches failed."""
    span = max(end - start, 1e-9)
    height = len(data.lanes) * ROW_HEIGHT + AXIS_HEIGHT
    binned = len(data.spans) > TIMELINE_LIMIT
    bins = timeline_bins(len(data.lanes))
    if binned:
        marks = bin_marks(lane_bins(data.spans, len(data.lanes), start, end, bins), span, bins)
    else:
        marks = bar_marks(data, start, span)
    rows = []
    for number, lane in enumerate(data.lanes):
        y = number * ROW_HEIGHT
        rows.append(
            f'<g class="lane" data-shard="{lane.shard}" data-process="{lane.process}">'
            f'<text class="lane-name" x="{LABEL_WIDTH - 6}" y="{y + ROW_HEIGHT - 6}">'
            f"shard {lane.shard} · process {lane.process}<title>{lane.mini_batches} "
            f"mini-batches ({lane.failed} failed), busy {lane.busy_seconds:.1f} s</title></text>"
            f'<line class="lane-rule" x1="{LABEL_WIDTH}" y1="{y + ROW_HEIGHT}" '
            f'x2="{WIDTH - 10}" y2="{y + ROW_HEIGHT}"/>'
            f'{"".join(marks.get(number, []))}</g>')
    grid = axis(span, 0, len(data.lanes) * ROW_HEIGHT)
    return svg(height, "timeline of mini-batches per process", grid + "".join(rows))


def bar_marks(data: ReportData, start: float, span: float) -> dict[int, list[str]]:
    spans = data.spans
    marks: dict[int, list[str]] = {}
    for index, mb_id in enumerate(spans.ids):
        lane, begin, seconds = spans.lanes[index], spans.starts[index], spans.seconds[index]
        status, tries = spans.statuses[index], spans.tries[index]
        x = x_of(begin - start, span)
        end = x_of(begin - start + seconds, span)
        # x_of has 2 decimals: a 3rd one of the difference is float noise
        width = max(round(end - x, 2), 0.5)  # pragma: no mutate: noise
        kind = STATUS_CLASS[status]
        retried = " retried" if tries > 1 else ""
        marks.setdefault(lane, []).append(
            f'<rect class="mb {kind}{retried}" x="{x}" y="{lane * ROW_HEIGHT + 3}" '
            f'width="{width}" height="{ROW_HEIGHT - 6}"><title>mini-batch {mb_id}: {kind}, '
            f"{seconds:.3f} s, {tries} {'try' if tries == 1 else 'tries'}, started at "
            f"{offset_label(begin - start)}</title></rect>")
    return marks


def bin_marks(cells: list[Bin], span: float, bins: int) -> dict[int, list[str]]:
    width = PLOT_WIDTH / bins
    seconds_per_bin = span / bins
    marks: dict[int, list[str]] = {}
    for item in cells:
        busy = min(item.busy / seconds_per_bin, 1.0)
        kind = "failed" if item.failed else "succeeded"
        marks.setdefault(item.lane, []).append(
            f'<rect class="bin {kind}" x="{round(LABEL_WIDTH + item.index * width, 2)}" '
            f'y="{item.lane * ROW_HEIGHT + 3}" width="{round(width, 2)}" '
            f'height="{ROW_HEIGHT - 6}" fill-opacity="{max(round(busy, 2), 0.1)}">'
            f"<title>{offset_label(item.index * seconds_per_bin)}: {item.started} started, "
            f"{item.failed} failed, busy {busy:.0%}</title></rect>")
    return marks


def throughput_svg(bins: list[ThroughputBin]) -> str:
    """Items finished per second in each time bin, failed ones stacked on top in red."""
    if not bins:
        return svg(AXIS_HEIGHT, "throughput", "")
    span = bins[-1].start + bins[-1].seconds
    peak = max(max((b.items_succeeded + b.items_failed) / b.seconds for b in bins), 1e-9)
    parts = [axis(span, 0, CHART_HEIGHT),
             f'<text class="peak" x="{LABEL_WIDTH - 6}" y="12">{peak:.3g} items/s</text>',
             f'<text class="peak" x="{LABEL_WIDTH - 6}" y="{CHART_HEIGHT}">0</text>']
    for item in bins:
        ok, bad = item.items_succeeded / item.seconds, item.items_failed / item.seconds
        x = x_of(item.start, span)
        width = round(x_of(item.start + item.seconds, span) - x, 2)  # pragma: no mutate: noise
        ok_height = round(CHART_HEIGHT * ok / peak, 2)
        bad_height = round(CHART_HEIGHT * bad / peak, 2)
        tip = (f"<title>{offset_label(item.start)}: {ok:.3g} items/s succeeded, "
               f"{bad:.3g} items/s failed</title>")
        if ok_height:
            parts.append(f'<rect class="rate succeeded" x="{x}" y="{CHART_HEIGHT - ok_height}" '
                         f'width="{width}" height="{ok_height}">{tip}</rect>')
        if bad_height:
            # heights of 2 decimals: their difference's 3rd decimal is float noise
            top = round(CHART_HEIGHT - ok_height - bad_height, 2)  # pragma: no mutate: noise
            parts.append(f'<rect class="rate failed" x="{x}" y="{top}" '
                         f'width="{width}" height="{bad_height}">{tip}</rect>')
    return svg(CHART_HEIGHT + AXIS_HEIGHT, "items finished per second", "".join(parts))
