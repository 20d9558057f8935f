"""What the HTML run report shows, gathered from the report's rows in one pass. Pure.

The rows are those of `processed_mini_batches.csv` (one per mini-batch): as the merge
writes them, or as csv.reader reads them back (`prs report`). A run can have 100,000
mini-batches and more: what is kept per mini-batch is a few numbers in flat arrays (tens of
bytes each), and what the page draws is bounded: the timeline shows each mini-batch up to
TIMELINE_LIMIT of them, and time bins per process beyond; the slowest and the failures are
the first few.
"""

from __future__ import annotations

import heapq
import itertools
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

TIMELINE_LIMIT = 2000  # mini-batches drawn one by one; more are binned
TIMELINE_BINS = 120  # time bins per process when binned, at most
TIMELINE_CELLS = 12_000  # time bins of all processes together, at most (the page's size)
THROUGHPUT_BINS = 60  # at most
THROUGHPUT_MIN_BINS = 10
THROUGHPUT_PER_BIN = 4  # mini-batches, while that leaves more than THROUGHPUT_MIN_BINS
SLOWEST_SHOWN = 10
FAILURES_SHOWN = 50
FAILED_STATUSES = ("failed", "stopped")

# Status codes in the arrays (a byte each instead of a string).
STATUS_CODES = {"succeeded": 0, "failed": 1, "stopped": 2, "not_run": 3}


class MiniBatchRow(NamedTuple):
    """One mini-batch's row, with the fields the report reads (empty ones as None). Built
    only for the rows the page lists: the failures and the slowest."""

    id: int
    shard: int
    process: int | None
    tries: int
    items: int
    succeeded: int
    failed: int
    seconds: float | None
    status: str
    error: str
    started: float | None

    @staticmethod
    def from_fields(fields: Sequence[str], places: Places) -> MiniBatchRow:
        return MiniBatchRow(*typed_fields(fields, places))

    @property
    def ended(self) -> float | None:
        if self.started is None or self.seconds is None:
            return None
        return self.started + self.seconds


class Places(NamedTuple):
    """Where each column is in a row of the CSV (None: a column an older runner did not
    write)."""

    id: int
    shard: int
    process: int
    tries: int
    items: int
    succeeded: int
    failed: int
    seconds: int
    status: int
    error: int | None
    started: int | None

    @staticmethod
    def of(header: Sequence[str]) -> Places:
        missing = [name for name in REQUIRED_COLUMNS if name not in header]
        if missing:
            raise ValueError(f"no column {', '.join(missing)} in its header")
        positions: list[Any] = [header.index(name) if name in header else None
                                for name in Places._fields]
        return Places(*positions)


REQUIRED_COLUMNS = Places._fields[:9]


def typed_fields(fields: Sequence[str], at: Places) -> tuple[Any, ...]:
    """A CSV row's fields as MiniBatchRow's, in its order (a plain tuple: `prs report` reads
    every row, and keeps only a few)."""
    return (int(fields[at.id]), int(fields[at.shard]), optional_int(fields[at.process]),
            int(fields[at.tries]), int(fields[at.items]), int(fields[at.succeeded]),
            int(fields[at.failed]), optional_float(fields[at.seconds]), fields[at.status],
            optional_field(fields, at.error),
            optional_float(optional_field(fields, at.started)))


def optional_field(fields: Sequence[str], place: int | None) -> str:
    return fields[place] if place is not None and place < len(fields) else ""


def optional_int(text: str | None) -> int | None:
    return int(text) if text else None


def optional_float(text: str | None) -> float | None:
    return float(text) if text else None


@dataclass(frozen=True)
class Lane:
    """One worker process of one shard: a row of the timeline."""

    shard: int
    process: int
    mini_batches: int = 0
    failed: int = 0
    busy_seconds: float = 0.0


@dataclass
class Spans:
    """The timed mini-batches, as flat arrays (a few bytes each, not an object each)."""

    ids: array[int] = field(default_factory=lambda: array("q"))
    lanes: array[int] = field(default_factory=lambda: array("i"))
    starts: array[float] = field(default_factory=lambda: array("d"))
    seconds: array[float] = field(default_factory=lambda: array("d"))
    statuses: array[int] = field(default_factory=lambda: array("b"))
    tries: array[int] = field(default_factory=lambda: array("i"))
    items: array[int] = field(default_factory=lambda: array("q"))

    def add(self, mb_id: int, lane: int, start: float, seconds: float, status: int,
            tries: int, items: int) -> None:
        self.ids.append(mb_id)
        self.lanes.append(lane)
        self.starts.append(start)
        self.seconds.append(seconds)
        self.statuses.append(status)
        self.tries.append(tries)
        self.items.append(items)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class ReportData:
    """What the page shows, built by `gather`."""

    by_status: Counter[str] = field(default_factory=Counter)
    items: int = 0
    items_succeeded: int = 0
    items_failed: int = 0
    retried: int = 0  # mini-batches whose record took more than one try
    untimed: int = 0  # ran, but no start recorded (an output written by an older runner)
    lanes: list[Lane] = field(default_factory=list)
    spans: Spans = field(default_factory=Spans)
    slowest: list[MiniBatchRow] = field(default_factory=list)
    failures: list[MiniBatchRow] = field(default_factory=list)
    failures_total: int = 0

    @property
    def mini_batches(self) -> int:
        return sum(self.by_status.values())

    @property
    def bounds(self) -> tuple[float, float] | None:
        """The first start and the last end of the timed mini-batches; None without any."""
        if not len(self.spans):
            return None
        ends = map(float.__add__, self.spans.starts, self.spans.seconds)
        return min(self.spans.starts), max(ends)


def gather(lines: Iterable[Sequence[str]]) -> ReportData:
    """The report's data from processed_mini_batches.csv as csv.reader gives it (its header
    first), in one pass (`prs report`; the merge feeds a ReportGatherer the rows it writes)."""
    rows = iter(lines)
    gatherer = ReportGatherer()
    header = next(rows, None)
    if header is not None:
        at = Places.of(header)
        for fields in rows:
            if fields:  # a blank line (a hand-edited file's last, say) is no row
                gatherer.add(typed_fields(fields, at))
    return gatherer.finish()


class ReportGatherer:
    """The report's data, one mini-batch's row at a time. The merge runs this over every
    mini-batch it writes, so `add` works on the row as given and keeps no object per row
    (a microsecond or two each); only the failures and the slowest shown are kept whole."""

    def __init__(self) -> None:
        self.data = ReportData()
        self.lane_index: dict[tuple[int, int], int] = {}  # (shard, process): its lane
        self.lane_counts: list[list[float]] = []  # per lane: mini-batches, failed, busy seconds
        # a min-heap of the slowest: (seconds, -id, row number, row); the number keeps rows
        # of a hand-edited CSV with the same id and time from being compared
        self.slowest: list[tuple[float, int, int, Sequence[Any]]] = []
        self.ranked = 0

    def add(self, row: Sequence[Any]) -> None:
        """ROW: a mini-batch's fields in MiniBatchRow's order (None where empty)."""
        mb_id, shard, process, tries, items, succeeded, failed, seconds, status, _, started = row
        data = self.data
        data.by_status[status] += 1
        data.items += items
        data.items_succeeded += succeeded
        data.items_failed += failed
        data.retried += tries > 1
        if status in FAILED_STATUSES:
            data.failures_total += 1
            if len(data.failures) < FAILURES_SHOWN:
                data.failures.append(MiniBatchRow(*row))
        if process is None or status in NOT_RAN:
            return
        lane = self.lane_index.setdefault((shard, process), len(self.lane_counts))
        if lane == len(self.lane_counts):
            self.lane_counts.append([0, 0, 0.0])
        counts = self.lane_counts[lane]
        counts[0] += 1
        counts[1] += status == "failed"
        if seconds is None:
            data.untimed += 1
            return
        if not -MOST_SECONDS < seconds < MOST_SECONDS:  # NaN too: the page could not place it
            raise ValueError(f"mini-batch {mb_id} took {seconds} seconds")
        counts[2] += seconds
        self.ranked += 1
        keep_slowest(self.slowest, (seconds, -mb_id, self.ranked, row))
        if started is None:
            data.untimed += 1
            return
        if not 0 <= started < MOST_SECONDS:
            raise ValueError(f"mini-batch {mb_id} started at {started}, not a time")
        data.spans.add(mb_id, lane, started, seconds, STATUS_CODES.get(status, 1), tries, items)

    def add_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """ROWS, the rows of distinct mini-batches (the merge's), as `add` takes them one by
        one; when each ran to its end in a process and was timed, taken column by column,
        at a fraction of `add`'s cost per row."""
        columns = list(zip(*rows, strict=True))  # pragma: no mutate: lengths are checked next
        if len(columns) != len(MiniBatchRow._fields) or not plain(columns):
            for row in rows:
                self.add(row)
            return
        ids, shards, processes, tries, items, succeeded, failed, seconds, statuses, _, starts = (
            columns)
        data, by_status = self.data, Counter(statuses)
        data.by_status.update(by_status)
        data.items += sum(items)
        data.retried += sum(t > 1 for t in tries)
        data.items_succeeded += sum(succeeded)
        data.items_failed += sum(failed)
        failures = sum(by_status[status] for status in FAILED_STATUSES)
        data.failures_total += failures
        if failures:
            shown = (MiniBatchRow(*row) for row in rows if row[8] in FAILED_STATUSES)
            data.failures.extend(itertools.islice(shown, FAILURES_SHOWN - len(data.failures)))
        keys = list(zip(shards, processes, strict=True))  # pragma: no mutate: equal lengths
        for key in dict.fromkeys(keys):  # new lanes numbered as `add` numbers them
            if key not in self.lane_index:
                self.lane_index[key] = len(self.lane_counts)
                self.lane_counts.append([0, 0, 0.0])
        lanes = list(map(self.lane_index.__getitem__, keys))
        timed = zip(lanes, statuses, seconds, strict=True)  # pragma: no mutate: equal lengths
        for lane, status, took in timed:
            counts = self.lane_counts[lane]
            counts[0] += 1
            counts[1] += status == "failed"
            counts[2] += took  # in row order, as `add` sums them: the same float
        ranked = range(self.ranked + 1, self.ranked + 1 + len(rows))
        self.ranked += len(rows)
        negated = map(int.__neg__, ids)
        entries = zip(seconds, negated, ranked, rows, strict=True)  # pragma: no mutate: all n
        for entry in heapq.nlargest(SLOWEST_SHOWN, entries):
            keep_slowest(self.slowest, entry)
        spans = data.spans
        for column, values in ((spans.ids, ids), (spans.starts, starts),
                               (spans.seconds, seconds), (spans.tries, tries),
                               (spans.items, items)):
            column.fromlist(list(values))  # twice as fast as extend(), from a tuple
        spans.lanes.fromlist(lanes)
        spans.statuses.fromlist([STATUS_CODES.get(status, 1) for status in statuses])

    def finish(self) -> ReportData:
        """The data: the slowest in order, the lanes numbered in (shard, process) order."""
        data, lane_index, lane_counts = self.data, self.lane_index, self.lane_counts
        data.slowest = [MiniBatchRow(*row)
                        for *_, row in sorted(self.slowest, key=lambda s: (-s[0], -s[1], s[2]))]
        order = sorted(lane_index)
        renumbered = {lane_index[key]: number for number, key in enumerate(order)}
        data.spans.lanes = array("i", (renumbered[lane] for lane in data.spans.lanes))
        data.lanes = [Lane(shard, process, int(lane_counts[lane_index[shard, process]][0]),
                           int(lane_counts[lane_index[shard, process]][1]),
                           lane_counts[lane_index[shard, process]][2])
                      for shard, process in order]
        return data


def plain(columns: list[tuple[Any, ...]]) -> bool:
    """Whether the rows of COLUMNS each ran to the end in a process and were timed within
    what `add` accepts (which says why not, row by row)."""
    _, _, processes, _, _, _, _, seconds, statuses, _, starts = columns
    return (None not in processes and None not in seconds and None not in starts
            and NOT_RAN_SET.isdisjoint(statuses)
            and all(-MOST_SECONDS < took < MOST_SECONDS for took in seconds)  # NaN too
            and all(0 <= start < MOST_SECONDS for start in starts))


MOST_SECONDS = 2.5e11  # Unix seconds of the year 9999 (what the page can show as a date)
NOT_RAN = ("not_run", "stopped")  # no process ran them to the end: not on the timeline
NOT_RAN_SET = frozenset(NOT_RAN)


def keep_slowest(heap: list[tuple[float, int, int, Sequence[Any]]],
                 entry: tuple[float, int, int, Sequence[Any]]) -> None:
    """Keep the SLOWEST_SHOWN slowest entries (seconds, -id, number, row); of equal times,
    the lower ids."""
    if len(heap) < SLOWEST_SHOWN:
        heapq.heappush(heap, entry)
    elif entry[:2] > heap[0][:2]:
        heapq.heapreplace(heap, entry)


@dataclass(frozen=True)
class Bin:
    """A time bin of one lane (the binned timeline): how much of it the lane was busy."""

    lane: int
    index: int
    busy: float  # seconds of mini-batches in the bin, cut at its edges
    started: int  # mini-batches that started in the bin
    failed: int  # of them, failed


def timeline_bins(lanes: int) -> int:
    """Time bins per process of a binned timeline: fewer with many processes, so that the
    page stays bounded (12 at least: a row still shows its busy and idle stretches)."""
    return min(max(TIMELINE_CELLS // max(lanes, 1), 12), TIMELINE_BINS)


def lane_bins(spans: Spans, lanes: int, start: float, end: float,
              bins: int = TIMELINE_BINS) -> list[Bin]:
    """Per lane (of LANES) and time bin: the busy seconds (spans cut at the bin edges), the
    mini-batches started in it and how many of them failed. Only bins with something in
    them."""
    width = max(end - start, 1e-9) / bins
    cells = lanes * bins  # lane by lane, bin by bin
    busy, started, failed = [0.0] * cells, [0] * cells, [0] * cells
    ok, last = STATUS_CODES["succeeded"], bins - 1
    # bin_of inlined: at 100,000 mini-batches the calls were most of the page's time
    for lane, begin, seconds, status in zip(spans.lanes, spans.starts, spans.seconds,
                                            spans.statuses, strict=True):
        finish = begin + seconds
        first, final = int((begin - start) / width), int((finish - start) / width)
        first = 0 if first < 0 else last if first > last else first
        final = 0 if final < 0 else last if final > last else final
        row = lane * bins
        started[row + first] += 1
        failed[row + first] += status != ok
        for index in range(first, final + 1):
            low = start + index * width
            # 0 for a span that ends on the bin's first edge: the bin shows only if one starts
            busy[row + index] += min(finish, low + width) - max(begin, low)
    return [Bin(cell // bins, cell % bins, busy[cell], started[cell], failed[cell])
            for cell in range(cells) if busy[cell] or started[cell]]


def bin_of(moment: float, start: float, width: float, bins: int) -> int:
    return min(max(int((moment - start) / width), 0), bins - 1)


@dataclass(frozen=True)
class ThroughputBin:
    start: float  # seconds after the run's start
    seconds: float
    items_succeeded: int
    items_failed: int


def throughput(spans: Spans, start: float, end: float) -> list[ThroughputBin]:
    """Items finished per time bin (each mini-batch's items at its end), succeeded and
    failed apart: the run's pace over time. A few mini-batches per bin at least, so that a
    short run is not a comb of single bars."""
    bins = min(max(len(spans) // THROUGHPUT_PER_BIN, THROUGHPUT_MIN_BINS), THROUGHPUT_BINS)
    width = max(end - start, 1e-9) / bins
    succeeded = [0] * bins
    failed = [0] * bins
    ok, last = STATUS_CODES["succeeded"], bins - 1
    for begin, seconds, status, items in zip(spans.starts, spans.seconds, spans.statuses,
                                             spans.items, strict=True):
        index = int((begin + seconds - start) / width)  # bin_of, inlined as in lane_bins
        index = 0 if index < 0 else last if index > last else index
        if status == ok:
            succeeded[index] += items
        else:
            failed[index] += items
    return [ThroughputBin(index * width, width, succeeded[index], failed[index])
            for index in range(bins)]
