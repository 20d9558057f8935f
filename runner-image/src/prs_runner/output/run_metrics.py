"""The metrics and tags entry scripts log through Azure's `Run.log`, `log_row`, `tag`... as
the run report shows them. Pure.

The offline run writes each one as a log record of the `prs.metrics` logger, `<time> INFO
prs.metrics [shard S process P] {"metric": name, "value": ...}`, in the worker's log. The
report gathers them per name, in log order: how many values were logged, the last one, and
the smallest and largest of those that are numbers. A log holds every run over the same
output, so the figures cover every run whose logs are still there.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

METRICS_LOGGER = "prs.metrics"  # azure_names.core.METRICS_LOGGER: the offline Run's logger
METRICS_MARK_ENV = "PRS_METRICS_MARK"  # where a worker marks its log as holding metrics
METRIC_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \w+ prs\.metrics \[shard \d+ process \d+\] (.*)$")
KINDS = ("metric", "tag")
MOST_NAMES = 200  # shown; a script logging a new name per mini-batch must not grow the page


@dataclass(frozen=True)
class MetricSummary:
    kind: str  # metric or tag
    name: str
    count: int
    last: Any
    numbers: tuple[float, float] | None = None  # smallest, largest of the numeric values


@dataclass
class MetricTable:
    by_name: dict[tuple[str, str], MetricSummary] = field(default_factory=dict)
    left_out: int = 0  # records of names past MOST_NAMES
    unreadable: int = 0  # metric lines that are not a whole record (cut at the log's line limit)


def metric_records(lines: Iterable[str]) -> Iterable[dict[str, Any] | None]:
    """The records the offline run wrote in a log's LINES, and None for each line of that
    logger that is not one (a value too long for the log reader's line, cut there; a
    record another logging format wrote is not recognised at all). Other lines are not
    metrics."""
    for line in lines:
        match = METRIC_LINE.match(line)
        if not match:
            continue
        try:
            record = json.loads(match.group(1))
        except ValueError:
            yield None
            continue
        kinds = [k for k in KINDS if isinstance(record, dict) and isinstance(record.get(k), str)]
        yield record if kinds else None


def add_records(table: MetricTable, records: Iterable[dict[str, Any] | None]) -> MetricTable:
    for record in records:
        if record is None:
            table.unreadable += 1
            continue
        kind = next(k for k in KINDS if isinstance(record.get(k), str))
        key = (kind, record[kind])
        value = record.get("value")
        known = table.by_name.get(key)
        if known is None and len(table.by_name) >= MOST_NAMES:
            table.left_out += 1
            continue
        table.by_name[key] = with_value(known, kind, record[kind], value)
    return table


def with_value(known: MetricSummary | None, kind: str, name: str, value: Any
               ) -> MetricSummary:
    number = numeric(value)
    if known is None:
        return MetricSummary(kind, name, 1, value,
                             None if number is None else (number, number))
    numbers = known.numbers
    if number is not None:
        numbers = (number, number) if numbers is None else (min(numbers[0], number),
                                                             max(numbers[1], number))
    return replace(known, count=known.count + 1, last=value, numbers=numbers)


def numeric(value: Any) -> float | None:
    """VALUE as a number: an int or float (bools are not), or the value of a stepped
    metric (`log(name, value, step=N)` writes {"step": N, "value": ...})."""
    if isinstance(value, dict) and set(value) == {"step", "value"}:
        value = value["value"]
    if type(value) not in (int, float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int past a float's range: shown, not ranged
        return None
    return number if math.isfinite(number) else None


def summaries(table: MetricTable) -> list[MetricSummary]:
    """Metrics first, then tags; each by name."""
    return sorted(table.by_name.values(), key=lambda s: (KINDS.index(s.kind), s.name))
