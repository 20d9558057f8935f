"""Reading tabular mini-batches: the planning scan's ranged reads of an object, and a
worker's TableReader (one open file, the CSV header once, the next mini-batch read ahead).

The object here is a local file opened through pyarrow's own filesystem API and wrapped as
the storage layer wraps an object store's file (ObjectReader): the same read_at calls an S3,
GCS or Azure file answers. The servers themselves are in tests/storage.
"""

from __future__ import annotations

import io
from pathlib import Path
from unittest.mock import patch

import pandas as pd
import pyarrow.csv as pacsv
import pytest
from pyarrow import fs as pafs

from prs_runner.planning.plan import MiniBatch
from prs_runner.planning.tabular_reading import TableReader
from prs_runner.planning.tabular_scan import FETCHERS, scan_text_file
from prs_runner.step.spec import MiniBatchSize
from prs_runner.storage.filesystem import Storage
from prs_runner.storage.object_reads import REQUESTS, ObjectReader, object_reads
from tests.unit.test_tabular_planning import csv_with_quoted_newlines


def as_object(path: Path) -> io.BufferedReader:
    raw = pafs.LocalFileSystem().open_input_file(str(path))
    return io.BufferedReader(ObjectReader(raw, f"s3://bucket/{path.name}"), 64 * 1024)


@pytest.mark.parametrize("block_bytes", [64, 1000, 4096])
def test_the_scan_of_an_object_reads_blocks_at_once_and_cuts_as_the_plain_scan(
    tmp_path: Path, block_bytes: int
) -> None:
    data = csv_with_quoted_newlines(400, seed=3)
    for size in (len(data), len(data) - len(data) % block_bytes):  # the end: part or whole
        path = tmp_path / f"table-{size}.csv"
        path.write_bytes(data[:size])
        plain = scan_text_file(io.BytesIO(data[:size]), size, "csv", 700, None,
                               block_bytes=block_bytes)
        before = REQUESTS["get"]
        with as_object(path) as stream:
            assert object_reads(stream) is not None
            assert scan_text_file(stream, size, "csv", 700, None,
                                  block_bytes=block_bytes) == plain
        # one ranged read per block, none past the end however many were in flight
        assert REQUESTS["get"] - before == -(-size // block_bytes)


def test_only_an_object_is_read_at_offsets_from_several_threads(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"a\n1\n")
    with path.open("rb") as local:
        assert object_reads(local) is None  # a disk is read in order, by one thread
    assert object_reads(io.BytesIO(b"a\n")) is None
    assert FETCHERS > 1


@pytest.mark.parametrize("nodes", [1, 2])
def test_openings_are_the_plans_first_mini_batches_published_as_they_are_cut(
    tmp_path: Path, nodes: int
) -> None:
    """Two files, the second cut block by block: openings span both, start small and
    double, and the plan that follows holds them unchanged, in shard 0."""
    from prs_runner.planning.tabular_scan import Openings, plan_tabular

    (tmp_path / "a.csv").write_bytes(csv_with_quoted_newlines(40, seed=1))
    (tmp_path / "b.csv").write_bytes(csv_with_quoted_newlines(3000, seed=2))
    storage = Storage(str(tmp_path))
    listing = storage.list_files()
    published: list[list[MiniBatch]] = []
    openings = Openings(published.append, sum(e.size for e in listing), nodes)
    with patch("prs_runner.planning.tabular_scan.BLOCK_BYTES", 4096):
        batches = plan_tabular(storage, listing, "csv", MiniBatchSize(bytes=500), [], nodes,
                               openings)
    opened = [mb for opening in published for mb in opening]
    assert [mb.id for mb in opened] == list(range(len(opened)))
    assert opened == batches[: len(opened)]
    assert {mb.shard for mb in opened} == {0}
    sizes = [len(o) for o in published]
    assert len(sizes) >= 2 and sizes[0] >= 8, sizes
    assert all(later >= sum(sizes[:i + 1]) for i, later in enumerate(sizes[1:]))
    # published while b.csv was still being scanned: not only at its end
    assert any(o[-1].items[0] == "b.csv" and o[-1].id < batches[-1].id for o in published)
    assert {mb.items[0] for mb in opened} == {"a.csv", "b.csv"}  # across files
    share = sum(e.size for e in listing) // (2 * nodes)
    if nodes == 1:
        assert len(opened) > len(batches) // 2
    else:
        assert sum(mb.bytes for mb in opened) <= share
        assert len(opened) < len(batches) and {mb.shard for mb in batches} == {0, 1}
    assert openings.published == len(opened)


def test_partitioned_plans_publish_no_openings(tmp_path: Path) -> None:
    from prs_runner.planning.tabular_scan import Openings, plan_tabular

    for store in range(20):
        (tmp_path / f"store={store}").mkdir()
        (tmp_path / f"store={store}" / "p.csv").write_bytes(b"a,b\n1,2\n")
    storage = Storage(str(tmp_path))
    published: list[list[MiniBatch]] = []
    batches = plan_tabular(storage, storage.list_files(), "csv", MiniBatchSize(bytes=1),
                           ["store"], 1, Openings(published.append, 1000, 1))
    assert len(batches) == 20 and published == []


def planned(folder: Path, target_bytes: int) -> list[MiniBatch]:
    from prs_runner.planning.tabular_scan import plan_tabular

    storage = Storage(str(folder))
    return plan_tabular(storage, storage.list_files(), "csv", MiniBatchSize(bytes=target_bytes),
                        [], 1)


@pytest.mark.parametrize("ahead", [False, True])
def test_mini_batches_read_in_turn_or_ahead_are_the_whole_table_once(
    tmp_path: Path, ahead: bool
) -> None:
    data = csv_with_quoted_newlines(300, seed=8)
    (tmp_path / "b.csv").write_bytes(data)
    (tmp_path / "a.csv").write_bytes(csv_with_quoted_newlines(50, seed=9))
    batches = planned(tmp_path, 900)
    assert len(batches) > 10
    reader = TableReader(Storage(str(tmp_path)), "csv", ahead=ahead)
    frames = []
    for mb, following in zip(batches, [*batches[1:], None], strict=True):
        if following is not None:
            reader.prefetch(following)  # as the command reader does for a queued one
        frame, skipped = reader.read(mb)
        assert skipped == ""
        assert len(frame) == mb.item_count
        frames.append(frame)
    reader.close()
    expected = pd.concat([pacsv.read_csv(tmp_path / name).to_pandas()
                          for name in ("a.csv", "b.csv")], ignore_index=True)
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), expected)
    assert not reader.ahead  # nothing read ahead is left held


def test_read_ahead_holds_one_mini_batch_and_a_failure_is_raised_when_it_runs(
    tmp_path: Path
) -> None:
    (tmp_path / "t.csv").write_bytes(csv_with_quoted_newlines(200, seed=4))
    first, second, third, *_ = planned(tmp_path, 600)
    reader = TableReader(Storage(str(tmp_path)), "csv", ahead=True)
    reader.prefetch(second)
    reader.prefetch(third)  # no room: read when its turn comes
    assert list(reader.ahead) == [second.id]
    reader.ahead[second.id].result()
    (tmp_path / "t.csv").unlink()
    reader.close()  # the open file is gone too: every read now fails
    reader.ahead.clear()
    reader.prefetch(first)  # starts, and fails on its thread
    with pytest.raises(FileNotFoundError):
        reader.read(first)
    assert not reader.ahead


def test_a_large_mini_batch_is_not_read_ahead(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_bytes(csv_with_quoted_newlines(100, seed=2))
    _, second, *_ = planned(tmp_path, 400)
    reader = TableReader(Storage(str(tmp_path)), "csv", ahead=True)
    reader.AHEAD_MAX_BYTES = second.bytes - 1
    reader.prefetch(second)
    assert not reader.ahead
    assert len(reader.read(second)[0]) == second.item_count  # read when it runs instead


def test_the_csv_header_is_read_once_per_file(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_bytes(csv_with_quoted_newlines(200, seed=6))
    batches = planned(tmp_path, 500)
    reader = TableReader(Storage(str(tmp_path)), "csv")
    for mb in batches:
        reader.read(mb)
    assert list(reader.headers) == ["t.csv"]
    assert reader.headers["t.csv"] == b"id,text,value\n"
    assert reader.opened is not None and reader.opened[0] == "t.csv"
