"""Planning, shard assignment, fingerprints, thresholds, globbing: pure functions, tables."""

from __future__ import annotations

from typing import Any

import pytest

from prs_runner.execution.environment import gpu_for_process, visible_gpus
from prs_runner.execution.progress import format_duration, progress_line
from prs_runner.output.row_encoding import encode_text
from prs_runner.planning.fingerprint import compute_fingerprint
from prs_runner.planning.plan import (
    Plan,
    assign_shards,
    describe_plan,
    plan_files,
    plan_from_json,
    plan_to_json,
)
from prs_runner.step.spec import DEFAULTS
from prs_runner.step.thresholds import Counts, crossed_threshold
from prs_runner.storage.filesystem import FileEntry, glob_to_regex


def files(*sizes: int) -> list[FileEntry]:
    return [FileEntry(f"f{i:03d}", size, 0) for i, size in enumerate(sizes)]


@pytest.mark.parametrize(
    ("sizes", "per_batch", "nodes", "expected_items", "expected_shards"),
    [
        ((1, 1, 1, 1, 1), 2, 1, [2, 2, 1], [0, 0, 0]),
        ((1, 1, 1, 1), 1, 2, [1, 1, 1, 1], [0, 1, 0, 1]),
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


def test_plan_round_trips_through_json() -> None:
    plan = Plan("s", "sha256:x", "/in", 2, tuple(plan_files(files(3, 4, 5), 2, 2)),
                {"a": 1}, {"model": "/m"})
    assert plan_from_json(plan_to_json(plan)) == plan
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
    before = compute_fingerprint(BASE, [("s.py", b"x")], listing, {})
    after = compute_fingerprint({**BASE, **change}, [("s.py", b"x")], listing, {})
    assert (before == after) is same


def test_fingerprint_follows_code_input_and_side_inputs() -> None:
    base = compute_fingerprint(BASE, [("s.py", b"x")], files(1), {"m": files(1)})
    assert base != compute_fingerprint(BASE, [("s.py", b"y")], files(1), {"m": files(1)})
    assert base != compute_fingerprint(BASE, [("s.py", b"x")], files(2), {"m": files(1)})
    assert base != compute_fingerprint(BASE, [("s.py", b"x")], files(1), {"m": files(2)})


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


def test_progress_line() -> None:
    line = progress_line(Counts(3, 1, 30, 2, 30), total=8, elapsed=2.0, resumed=0, width=8)
    assert line == "[####....] 4/8 mini-batches  2 failed items  2.0/s  ETA 0:00:02"
    assert format_duration(3725) == "1:02:05"
