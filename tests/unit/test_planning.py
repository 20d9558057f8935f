"""Planning, shard assignment, fingerprints, thresholds, globbing: pure functions, tables."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest

from prs_runner.execution.environment import gpu_for_process, visible_gpus
from prs_runner.execution.progress import PLAIN_INTERVAL, Progress, format_duration, progress_line
from prs_runner.output.row_encoding import encode_text
from prs_runner.planning.fingerprint import compute_fingerprint
from prs_runner.planning.plan import (
    OPENING_FIRST,
    MiniBatch,
    Plan,
    TableSlice,
    assign_shards,
    cut_parts,
    describe_plan,
    describe_slice,
    header_from_json,
    header_of,
    header_to_json,
    opening_due,
    opening_limit,
    part_from_json,
    part_to_json,
    plan_files,
    plan_summary,
)
from prs_runner.planning.plan_store import PlanView, read_header, read_plan, write_plan
from prs_runner.step.globs import glob_to_regex
from prs_runner.step.spec import DEFAULTS
from prs_runner.step.thresholds import Counts, crossed_threshold
from prs_runner.storage.filesystem import FileEntry

SHA_X, SHA_Y = (hashlib.sha256(b).hexdigest() for b in (b"x", b"y"))


def files(*sizes: int) -> list[FileEntry]:
    return [FileEntry(f"f{i:03d}", size, 0) for i, size in enumerate(sizes)]


@pytest.mark.parametrize(
    ("sizes", "per_batch", "nodes", "expected_items", "expected_shards"),
    [
        ((1, 1, 1, 1, 1), 2, 1, [2, 2, 1], [0, 0, 0]),
        ((1, 1, 1, 1), 1, 2, [1, 1, 1, 1], [0, 0, 1, 1]),  # contiguous ranges
        ((100, 1, 1, 1), 1, 2, [1, 1, 1, 1], [0, 1, 1, 1]),  # balanced by bytes
        ((5,), 10, 3, [1], [0]),
        ((), 3, 2, [], []),
    ],
)
def test_plan_files(
    sizes: tuple[int, ...], per_batch: int, nodes: int,
    expected_items: list[int], expected_shards: list[int],
) -> None:
    batches = plan_files(files(*sizes), per_batch, nodes)
    assert [len(b.items) for b in batches] == expected_items
    assert [b.shard for b in batches] == expected_shards
    assert [b.id for b in batches] == list(range(len(batches)))
    assert [i for b in batches for i in b.items] == [f.path for f in files(*sizes)]


def test_shards_stay_within_one_mini_batch_of_each_other() -> None:
    shards = assign_shards([10] * 1001, 4)
    loads = [shards.count(s) for s in range(4)]
    assert max(loads) - min(loads) <= 1


def test_describe_plan_totals() -> None:
    plan = Plan("s", "sha256:x", "/in", 2, tuple(plan_files(files(3, 4, 5), 2, 2)),
                {"a": 1}, {"model": "/m"})
    assert describe_plan(plan)[0] == "2 mini-batches, 3 items, 12 bytes, 2 shard(s)"


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("**/*.png", "a.png", True),
        ("**/*.png", "x/y/a.png", True),
        ("*.png", "x/a.png", False),
        ("x/*.png", "x/a.png", True),
        ("x/?.png", "x/ab.png", False),
        ("**", "any/thing", True),
        ("*.[ch]", "a.c", True),
    ],
)
def test_glob(pattern: str, path: str, matches: bool) -> None:
    assert bool(glob_to_regex(pattern).match(path)) is matches


def spec(**changes: Any) -> dict[str, Any]:
    return {**DEFAULTS, **changes}


@pytest.mark.parametrize(
    ("counts", "changes", "total", "crossed"),
    [
        (Counts(0, 5, 0, 50, 0), {}, 10, None),
        (Counts(0, 0, 0, 3, 0), {"errorThreshold": 3}, 10, None),
        (Counts(0, 0, 0, 4, 0), {"errorThreshold": 3}, 10, "errorThreshold"),
        (Counts(0, 1, 0, 0, 0), {"miniBatchErrorThreshold": 0}, 10, "miniBatchErrorThreshold"),
        (Counts(0, 1, 0, 0, 0), {"miniBatchErrorThreshold": 1}, 10, None),
        (Counts(0, 1, 0, 0, 0), {"allowedFailedPercent": 10}, 10, None),
        (Counts(0, 2, 0, 0, 0), {"allowedFailedPercent": 10}, 10, "allowedFailedPercent"),
        (Counts(0, 1, 0, 0, 0), {"allowedFailedPercent": 0}, 10, "allowedFailedPercent"),
    ],
)
def test_thresholds(
    counts: Counts, changes: dict[str, Any], total: int, crossed: str | None
) -> None:
    why = crossed_threshold(counts, spec(**changes), total)
    assert (why.split(" ")[0] if why else None) == crossed


BASE = {**DEFAULTS, "code": {"entryScript": "s.py", "sourceDirectory": "/a"},
        "input": {"type": "files", "uri": "/in"}, "output": {"uri": "/out"},
        "miniBatchSize": "10"}


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({"nodeCount": 8}, True),
        ({"output": {"uri": "/elsewhere"}}, True),
        ({"input": {"type": "files", "uri": "/moved"}}, True),
        ({"miniBatchSize": "5"}, False),
        ({"arguments": ["--x"]}, False),
        ({"env": [{"name": "A", "value": "1"}]}, False),
        ({"image": "other"}, False),
    ],
)
def test_fingerprint_follows_what_changes_results(change: dict[str, Any], same: bool) -> None:
    listing = files(1, 2)
    before = compute_fingerprint(BASE, [("s.py", SHA_X)], listing, {})
    after = compute_fingerprint({**BASE, **change}, [("s.py", SHA_X)], listing, {})
    assert (before == after) is same


def test_fingerprint_follows_code_input_and_side_inputs() -> None:
    base = compute_fingerprint(BASE, [("s.py", SHA_X)], files(1), {"m": files(1)})
    assert base != compute_fingerprint(BASE, [("s.py", SHA_Y)], files(1), {"m": files(1)})
    assert base != compute_fingerprint(BASE, [("s.py", SHA_X)], files(2), {"m": files(1)})
    assert base != compute_fingerprint(BASE, [("s.py", SHA_X)], files(1), {"m": files(2)})


@pytest.mark.parametrize(
    ("env", "devices", "process", "expected"),
    [
        ({}, [], 0, None),
        ({}, ["nvidia0", "nvidia1", "nvidiactl"], 3, "1"),
        ({"CUDA_VISIBLE_DEVICES": "4,5,6"}, ["nvidia0"], 1, "5"),
        ({"CUDA_VISIBLE_DEVICES": ""}, ["nvidia0"], 0, None),
    ],
)
def test_one_gpu_per_worker(
    env: dict[str, str], devices: list[str], process: int, expected: str | None
) -> None:
    assert gpu_for_process(visible_gpus(env, devices), process) == expected


@pytest.mark.parametrize(
    ("result", "payload", "count"),
    [
        (["a", "b"], b"a\nb\n", 2),
        ((1, 2.5), b"1\n2.5\n", 2),
        ([], b"", 0),
        ([("x", 1)], b"('x', 1)\n", 1),
    ],
)
def test_text_encoding(result: Any, payload: bytes, count: int) -> None:
    assert encode_text(result) == (payload, count)


def test_text_encoding_of_numpy_and_dataframes() -> None:
    import numpy as np
    import pandas as pd

    assert encode_text(np.array([1, 2])) == (b"1\n2\n", 2)
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert encode_text(frame) == (b"1 x\n2 y\n", 2)


def test_text_encoding_rejects_a_string() -> None:
    with pytest.raises(TypeError, match="return a list"):
        encode_text("abc")


@pytest.mark.parametrize(("counts", "total", "elapsed", "resumed", "expected"), [
    pytest.param(Counts(3, 1, 30, 2, 30), 8, 2.0, 0,
                 "4/8 mini-batches (50%)  32 items, 1 failed (2 items)  "
                 "2.0/s  ETA 0:00:02", id="half-way"),
    pytest.param(Counts(), 8, 0.0, 0,
                 "0/8 mini-batches (0%)  0 items, no failures  "
                 "0.0/s  ETA ?", id="nothing-yet"),
    # the rate counts this run only: the 6 resumed mini-batches took no time here
    pytest.param(Counts(7, 0, 1234, 1, 0), 10, 4.0, 6,
                 "7/10 mini-batches (70%)  1,235 items, 0 failed (1 item)  "
                 "0.2/s  ETA 0:00:12", id="resumed"),
    pytest.param(Counts(0, 0, 0, 0, 0), 0, 1.0, 0,
                 "0/0 mini-batches (100%)  0 items, no failures  "
                 "0.0/s  ETA ?", id="empty-plan"),
    # resumed counts not all reported yet: no negative rate (it said -0.1/s)
    pytest.param(Counts(2, 0, 4, 0, 0), 3, 10.0, 3,
                 "2/3 mini-batches (66%)  4 items, no failures  "
                 "0.0/s  ETA ?", id="fewer-than-resumed"),
])
def test_progress_line(counts: Counts, total: int, elapsed: float, resumed: int,
                       expected: str) -> None:
    assert progress_line(counts, total, elapsed, resumed) == expected


def test_format_duration() -> None:
    assert format_duration(3725) == "1:02:05"
    assert format_duration(-3) == "0:00:00"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_items_failures_and_eta() -> None:
    terminal = Terminal()
    progress = Progress(terminal, total=10, resumed=0)
    progress.update(Counts(3, 1, 40, 2, 40))
    progress.close()
    final = terminal.getvalue().rsplit("\r", 1)[-1]
    assert "4/10 mini-batches" in final and final.endswith("\n")
    assert "42 items, 1 failed (2 items)" in final
    assert " 40%|" in final


def test_a_log_gets_plain_lines_and_no_carriage_returns() -> None:
    log = io.StringIO()
    progress = Progress(log, total=4, resumed=0)
    progress.last -= PLAIN_INTERVAL  # as if the interval had passed
    progress.update(Counts(1, 0, 5, 0, 5))
    progress.update(Counts(2, 0, 9, 0, 9))  # within the interval: not written
    progress.close()
    assert "\r" not in log.getvalue()
    assert log.getvalue().startswith("1/4 mini-batches (25%)  5 items")
    assert log.getvalue().count("\n") == 1


@pytest.mark.parametrize(
    ("sizes", "nodes", "expected"),
    [
        pytest.param([], 3, [], id="nothing"),
        pytest.param([7, 7, 7], 1, [0, 0, 0], id="one-shard"),
        pytest.param([1, 1, 1], 3, [0, 1, 2], id="one-each"),
        pytest.param([0, 0, 0, 0], 2, [0, 0, 1, 1], id="empty-batches-by-count"),
        # a mini-batch opens shard 1 once its middle reaches half of the 21 bytes
        pytest.param([5, 10, 5, 1], 2, [0, 0, 1, 1], id="by-middles"),
        pytest.param([4, 3, 1, 2, 2], 2, [0, 0, 1, 1, 1], id="half-the-bytes"),
        pytest.param([1, 1, 10], 2, [0, 0, 1], id="a-large-last"),
        pytest.param([100, 1, 1], 3, [0, 1, 2], id="every-shard-gets-one"),
        pytest.param([1, 1, 1, 100], 3, [0, 0, 1, 2], id="room-for-the-last"),
        pytest.param([1], 4, [0], id="more-shards-than-batches"),
        pytest.param([1, 2], 4, [0, 1], id="more-shards-than-two"),
    ],
)
def test_assign_shards(sizes: list[int], nodes: int, expected: list[int]) -> None:
    assert assign_shards(sizes, nodes) == expected


@pytest.mark.parametrize(
    ("sizes", "nodes", "opened", "expected"),
    [
        pytest.param([1, 1, 1, 1], 2, 0, [0, 0, 1, 1], id="none-opened"),
        pytest.param([1, 1, 1, 1], 2, 2, [0, 0, 1, 1], id="within-shard-0"),
        pytest.param([1, 1, 1, 1], 2, 3, [0, 0, 0, 1], id="opened-stay-in-shard-0"),
        pytest.param([1, 1, 1], 3, 2, [0, 0, 2], id="a-shard-left-empty"),
        pytest.param([5, 5], 1, 2, [0, 0], id="one-shard"),
    ],
)
def test_opened_mini_batches_are_shard_0s(
    sizes: list[int], nodes: int, opened: int, expected: list[int]
) -> None:
    assert assign_shards(sizes, nodes, opened) == expected


@pytest.mark.parametrize(
    ("published", "eligible", "due"),
    [
        (0, 0, False), (0, OPENING_FIRST - 1, False), (0, OPENING_FIRST, True),
        (8, 15, False), (8, 16, True), (16, 31, False), (16, 32, True), (100, 200, True),
        (100, 199, False),
    ],
)
def test_openings_start_small_and_double(published: int, eligible: int, due: bool) -> None:
    assert OPENING_FIRST == 8
    assert opening_due(published, eligible) is due


@pytest.mark.parametrize(
    ("size", "nodes", "limit"), [(1000, 1, None), (1000, 2, 250), (1000, 4, 125), (999, 2, 249)],
)
def test_openings_stay_within_half_of_shard_0s_share(
    size: int, nodes: int, limit: int | None
) -> None:
    assert opening_limit(size, nodes) == limit


def batch(id: int, shard: int, size: int = 1, *items: str,
          table: TableSlice | None = None) -> MiniBatch:
    return MiniBatch(id, shard, size, items or (f"f{id}",), table)


SHARDED = Plan("s", "sha256:x", "/in", 3,
               (batch(0, 0), batch(1, 1), batch(2, 0), batch(3, 2), batch(4, 0)))


@pytest.mark.parametrize(
    ("shard", "ids"), [(0, [0, 2, 4]), (1, [1]), (2, [3]), (3, [])],
)
def test_for_shard_gives_exactly_that_shards_mini_batches(shard: int, ids: list[int]) -> None:
    assert [mb.id for mb in SHARDED.for_shard(shard)] == ids


CONTIGUOUS = Plan("s", "sha256:x", "/in", 3,
                  (batch(0, 0, 5), batch(1, 0, 6), batch(2, 1), batch(3, 1), batch(4, 1)),
                  {"a": 1}, {"model": "/m"}, storage_requests=7)


def test_a_plan_is_stored_as_a_compact_header_and_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("prs_runner.planning.plan.PART_MINI_BATCHES", 2)
    parts = cut_parts(CONTIGUOUS)
    assert [[mb.id for mb in part] for part in parts] == [[0, 1], [2, 3], [4]]
    header = header_of(CONTIGUOUS, parts)
    assert header_to_json(header) == (
        b'{"version":2,"stepName":"s","fingerprint":"sha256:x","inputUri":"/in",'
        b'"nodeCount":3,"step":{"a":1},"sideInputs":{"model":"/m"},"storageRequests":7,'
        b'"miniBatches":5,"items":5,"bytes":14,"shardStarts":[0,2,5],"partStarts":[0,2,4]}')
    assert header_from_json(header_to_json(header)) == header
    assert part_to_json(parts[2]) == b'{"miniBatches":[[4,1,1,["f4"]]]}'
    assert part_from_json(part_to_json(parts[1])) == list(parts[1])


def test_a_part_never_spans_two_shards() -> None:
    assert [[mb.id for mb in part] for part in cut_parts(CONTIGUOUS)] == [[0, 1], [2, 3, 4]]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param([2, 2, 2, 2], [[0, 1], [2, 3]], id="full-at-the-limit"),
        pytest.param([3, 1, 1, 4], [[0, 1], [2], [3]], id="the-next-would-pass-it"),
        pytest.param([9, 1, 5], [[0], [1], [2]], id="one-larger-than-the-limit-alone"),
        pytest.param([1, 1, 1, 1, 1], [[0, 1, 2, 3], [4]], id="by-paths-before-count"),
    ],
)
def test_a_part_holds_at_most_part_paths_paths(
    monkeypatch: pytest.MonkeyPatch, files: list[int], expected: list[list[int]]
) -> None:
    monkeypatch.setattr("prs_runner.planning.plan.PART_PATHS", 4)
    plan = Plan("s", "sha256:x", "/in", 1, tuple(
        batch(i, 0, 1, *(f"f{i}-{k}" for k in range(n))) for i, n in enumerate(files)))
    assert [[mb.id for mb in part] for part in cut_parts(plan)] == expected


@pytest.mark.parametrize(("mb_id", "shard", "part"), [
    (0, 0, 0), (1, 0, 0), (2, 1, 2), (3, 1, 2), (4, 1, 4),
])
def test_the_header_finds_shards_and_parts(mb_id: int, shard: int, part: int) -> None:
    header = header_of(CONTIGUOUS, [CONTIGUOUS.mini_batches[:2], CONTIGUOUS.mini_batches[2:4],
                                    CONTIGUOUS.mini_batches[4:]])
    assert header.shard_of(mb_id) == shard
    assert header.part_of(mb_id) == part
    assert list(header.shard_ids(0)) == [0, 1]
    assert list(header.shard_ids(1)) == [2, 3, 4]
    assert list(header.shard_ids(2)) == []  # none: it starts at the end


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b'{"version":1,"stepName":"s"}', "plan version 1 is not 2"),
        (b'{"stepName":"s"}', "plan version None is not 2"),
    ],
)
def test_a_plan_of_another_version_is_refused(document: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        header_from_json(document)


def test_describe_plan() -> None:
    plan = Plan("s", "sha256:x", "/in", 3, (
        batch(0, 0, 30, "a.png", "b.png", "c.png"),
        batch(1, 1, 7, "d.png"),
        MiniBatch(2, 0, 0, ()),
        batch(12, 1, 1234567, "t.csv", table=TableSlice(rows=40, start=10, end=500)),
        batch(13, 0, 900, "t.parquet", table=TableSlice(rows=9, row_groups=(2, 3, 5))),
        batch(14, 1, 50, "x.csv", "y.csv",
              table=TableSlice(rows=6, partition={"store": 1, "brand": None})),
    ))
    assert describe_plan(plan) == [
        "6 mini-batches, 59 items, 1235554 bytes, 3 shard(s)",
        "shard 0: 3 mini-batches, 12 items, 930 bytes",
        "shard 1: 3 mini-batches, 47 items, 1234624 bytes",
        "shard 2: 0 mini-batches, 0 items, 0 bytes",
        "       0  shard 0          30 B  a.png (+2 more)",
        "       1  shard 1           7 B  d.png",
        "       2  shard 0           0 B  ",
        "      12  shard 1     1234567 B  t.csv bytes 10-500  40 rows",
        "      13  shard 0         900 B  t.parquet row groups 2-5  9 rows",
        "      14  shard 1          50 B  x.csv (+1 more) store=1, brand=None  6 rows",
    ]


def test_plan_summary_says_what_describe_plan_says() -> None:
    plan = Plan("s", "sha256:x", "/in", 3, (
        batch(0, 0, 30, "a.png", "b.png", "c.png"),
        MiniBatch(2, 0, 0, ()),
        batch(12, 1, 1234567, "t.csv", table=TableSlice(rows=40, start=10, end=500)),
    ))
    assert plan_summary(plan) == {
        "stepName": "s", "fingerprint": "sha256:x", "input": "/in",
        "miniBatchCount": 3, "items": 43, "bytes": 1234597,
        "shards": [{"shard": 0, "miniBatches": 2, "items": 3, "bytes": 30},
                   {"shard": 1, "miniBatches": 1, "items": 40, "bytes": 1234567},
                   {"shard": 2, "miniBatches": 0, "items": 0, "bytes": 0}],
        "miniBatches": [
            {"id": 0, "shard": 0, "bytes": 30, "items": 3, "files": 3, "firstFile": "a.png",
             "table": None},
            {"id": 2, "shard": 0, "bytes": 0, "items": 0, "files": 0, "firstFile": None,
             "table": None},
            {"id": 12, "shard": 1, "bytes": 1234567, "items": 40, "files": 1,
             "firstFile": "t.csv",
             "table": {"rows": 40, "start": 10, "end": 500, "headerEnd": 0}},
        ],
    }


@pytest.mark.parametrize(
    ("table", "text"),
    [
        pytest.param(None, "", id="files"),
        pytest.param(TableSlice(rows=3), "  3 rows", id="rows-only"),
        pytest.param(TableSlice(rows=1, row_groups=(4,)), " row groups 4-4  1 rows",
                     id="one-row-group"),
        pytest.param(TableSlice(rows=2, start=0, end=9, partition={"k": "v"}), " k=v  2 rows",
                     id="partition-wins"),
        pytest.param(TableSlice(rows=0, partition={}), "   0 rows", id="empty-partition"),
    ],
)
def test_describe_slice(table: TableSlice | None, text: str) -> None:
    assert describe_slice(table) == text


def test_a_stored_plan_reads_back_whole_or_by_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("prs_runner.planning.plan.PART_MINI_BATCHES", 2)
    monkeypatch.setattr("prs_runner.planning.plan_store.PARTS_HELD", 1)
    uri = f"{tmp_path}/_prs/plan.json"
    header = write_plan(uri, CONTIGUOUS)
    assert sorted(p.name for p in (tmp_path / "_prs/plan").iterdir()) == [
        "00000000.json", "00000002.json", "00000004.json"]
    assert read_plan(uri) == CONTIGUOUS
    assert read_plan(f"file://{uri}") == CONTIGUOUS
    assert read_header(uri) == header
    view = PlanView(uri)
    assert view[3] == CONTIGUOUS.mini_batches[3]
    assert view[2] == CONTIGUOUS.mini_batches[2]
    assert view.parts_read == 1  # one part held both
    assert view[0].id == 0 and view[3].id == 3
    assert view.parts_read == 3  # one part held at a time
    assert view.get(5) is None and view.get(-1) is None
    with pytest.raises(KeyError):
        view[5]


@pytest.mark.parametrize(("name", "shown"), [
    ("café.png", "café.png"),
    ("evil\x1b[2J.png", "'evil\\x1b[2J.png'"),
    ("two\nlines.png", "'two\\nlines.png'"),
])
def test_describe_plan_escapes_what_a_terminal_would_run(name: str, shown: str) -> None:
    plan = Plan("s", "sha256:x", "/in", 1, (batch(0, 0, 1, name),))
    assert describe_plan(plan)[-1] == f"       0  shard 0           1 B  {shown}"
