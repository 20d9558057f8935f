"""The committed set of a shard that looks for work, on a real local folder: bits, counts in
a range, reading on from where the last look stopped, torn and half-written lines, voids."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from prs_runner.output import committed_set
from prs_runner.output.commit_log import CommitLog, life_of, read_commits, void
from prs_runner.output.committed_set import CommittedSet, ShardPace
from prs_runner.storage.filesystem import Storage
from tests.unit.test_commit_log import header


@pytest.fixture
def output(tmp_path: Path) -> Storage:
    return Storage(str(tmp_path))


def commit(output: Storage, life: str, *ids: int) -> None:
    log = CommitLog(output, life)
    for mb_id in ids:
        log.add(header(mb_id), b"x")
    log.close()


def members(committed: CommittedSet) -> set[int]:
    return {mb_id for mb_id in range(-2, committed.count + 2) if mb_id in committed}


def test_the_ids_read_commits_gives(output: Storage) -> None:
    commit(output, "a", 1, 2)
    commit(output, "b", 2, 5, 99)  # 99: not a mini-batch of this plan
    committed = CommittedSet(output, 10).refresh()
    assert members(committed) == {1, 2, 5}
    assert "1" not in committed and 1.0 not in committed


def test_a_void_takes_its_record_out(output: Storage) -> None:
    commit(output, "a", 1, 2)
    commit(output, "b", 5)
    committed = CommittedSet(output, 10).refresh()
    void(output, [c for c in read_commits(output) if c.header.id == 5])
    assert members(committed.refresh()) == {1, 2}
    commit(output, "c", 7)
    assert members(committed.refresh()) == {1, 2, 7}


def test_reads_on_from_where_it_stopped(output: Storage) -> None:
    log = CommitLog(output, "a")
    log.add(header(1), b"x")
    committed = CommittedSet(output, 10).refresh()
    assert members(committed) == {1}
    read = committed.read_to["a.idx"]
    assert read == (Path(output.uri) / "_prs/commits/a.idx").stat().st_size
    log.add(header(3), b"x")
    log.close()
    assert members(committed.refresh()) == {1, 3}
    assert committed.read_to["a.idx"] > read


@pytest.mark.parametrize("chunk", [1, 40, 100, 1 << 20])
def test_a_long_log_is_read_a_chunk_at_a_time(output: Storage, chunk: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(committed_set, "READ_CHUNK", chunk)  # lines are ~90 bytes
    commit(output, "a", *range(0, 50))
    committed = CommittedSet(output, 100).refresh()
    assert members(committed) == set(range(0, 50))
    commit(output, "b", 60)
    assert members(committed.refresh()) == {*range(0, 50), 60}


@pytest.mark.parametrize("chunk", [1, 64, 1 << 20])
def test_a_half_written_line_is_left_for_the_next_look_whatever_the_chunk(
        output: Storage, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(committed_set, "READ_CHUNK", chunk)
    commit(output, "a", 1, 2, 3)
    index = Path(output.uri) / "_prs/commits/a.idx"
    whole = index.read_bytes()
    cut = whole.rindex(b"\n", 0, len(whole) - 1) + 1 + 7  # 7 bytes into the last line
    index.write_bytes(whole[:cut])
    committed = CommittedSet(output, 10).refresh()
    assert members(committed) == {1, 2}
    index.write_bytes(whole)
    assert members(committed.refresh()) == {1, 2, 3}
    assert committed.read_to["a.idx"] == len(whole)


def test_a_half_written_line_counts_once_it_is_whole(output: Storage) -> None:
    commit(output, "a", 1, 2)
    index = Path(output.uri) / "_prs/commits/a.idx"
    whole = index.read_bytes()
    first_line = whole[: whole.index(b"\n") + 1]
    index.write_bytes(whole[: len(first_line) + 5])  # the second line is being written
    committed = CommittedSet(output, 10).refresh()
    assert members(committed) == {1}
    assert committed.read_to["a.idx"] == len(first_line)
    index.write_bytes(whole)
    assert members(committed.refresh()) == {1, 2}


def test_a_torn_line_ends_its_log(output: Storage) -> None:
    commit(output, "a", 1, 2, 3)
    index = Path(output.uri) / "_prs/commits/a.idx"
    lines = index.read_bytes().splitlines(keepends=True)
    index.write_bytes(lines[0] + lines[1].replace(b'"id":2', b'"id":4') + lines[2])
    committed = CommittedSet(output, 10).refresh()
    assert members(committed) == {1}
    assert committed.ended == {"a.idx"}
    with index.open("ab") as stream:  # nothing after a torn line counts, even later
        stream.write(lines[2])
    assert members(committed.refresh()) == {1}


def test_a_log_gone_between_listing_and_reading_is_skipped(output: Storage) -> None:
    commit(output, "a", 1)
    committed = CommittedSet(output, 4).refresh()
    committed.read_on("gone.idx")  # as when the listing named it and a fresh run cleared it
    assert "gone.idx" not in committed.read_to
    assert members(committed) == {1}


def test_no_logs_yet(output: Storage) -> None:
    assert members(CommittedSet(output, 3).refresh()) == set()
    assert CommittedSet(output, 0).count_in(range(0, 5)) == 0


@pytest.mark.parametrize(("ids", "window", "count"), [
    ({0, 1, 2}, range(0, 3), 3),
    ({0, 1, 2}, range(1, 3), 2),
    ({0, 1, 2}, range(0, 1), 1),
    ({0, 1, 2}, range(3, 20), 0),
    ({7, 8}, range(7, 9), 2),  # across a byte
    ({7, 8}, range(8, 9), 1),
    ({7, 8}, range(0, 8), 1),
    ({5, 15, 16, 17}, range(6, 17), 2),
    ({5, 15, 16, 17}, range(0, 18), 4),
    ({5, 15, 16, 17}, range(-5, 100), 4),  # clipped to the plan
    ({5}, range(5, 5), 0),
    ({5}, range(6, 4), 0),
])
def test_count_in_a_range(output: Storage, ids: set[int], window: range, count: int) -> None:
    committed = CommittedSet(output, 18)
    for mb_id in ids:
        committed.add(mb_id)
    assert committed.count_in(window) == count
    assert members(committed) == ids


def test_add_ignores_ids_outside_the_plan(output: Storage) -> None:
    committed = CommittedSet(output, 8)
    committed.add(8)
    committed.add(-1)
    assert committed.bits == bytearray(1)


def test_the_pace_of_each_shard_that_ran_what_was_read(output: Storage) -> None:
    lives: list[tuple[str, list[tuple[int, int, float, float | None]]]] = [
        ("l1-0-0-7", [(1, 0, 1.0, 100.0), (2, 1, 0.5, 90.0)]),
        ("l2-0-1-7", [(3, 0, 2.0, 95.0), (4, 1, 0.5, None)])]
    for life, rows in lives:
        log = CommitLog(output, life)
        for mb_id, shard, seconds, started in rows:
            log.add(dataclasses.replace(header(mb_id), shard=shard, seconds=seconds,
                                        started=started), b"x")
        log.close()
    paces = CommittedSet(output, 10).refresh().paces
    assert paces[0].ends == {"l1-0-0-7": 101.0, "l2-0-1-7": 97.0}  # per worker life
    assert paces[0].first_start == 95.0  # the earliest start, not the first read
    assert paces[0].seconds == pytest.approx(0.8 * 1.0 + 0.2 * 2.0)  # a moving average
    # a record without a start leaves the ends
    assert paces[1] == ShardPace(0.5, 90.0, {"l1-0-0-7": 90.5})
    assert set(paces) == {0, 1}


def test_a_shard_pace_starts_from_its_first_run() -> None:
    pace = ShardPace()
    pace.ran("a", 3.0, None)
    assert pace == ShardPace(3.0, 0.0, {})
    pace.ran("a", 1.0, 5.0)
    assert pace.seconds == pytest.approx(0.8 * 3.0 + 0.2 * 1.0)
    assert (pace.ends, pace.first_start) == ({"a": 5.0}, 4.0)
    pace.ran("a", 1.0, 4.5)  # read later, ended earlier: the newest end stays
    pace.ran("b", 2.0, 7.0)
    assert (pace.ends, pace.first_start) == ({"a": 5.0, "b": 7.0}, 3.5)


@pytest.mark.parametrize(("name", "life"), [
    ("18ee00abbc81e776-1-0-26846.idx", "18ee00abbc81e776-1-0-26846"),  # local
    ("18ee00abbc81e776-1-0-26846-000003.idx", "18ee00abbc81e776-1-0-26846"),  # a part
    ("18ee00abbc81e776-2-s-26846-000000.idx", "18ee00abbc81e776-2-s-26846"),
])
def test_the_life_an_index_belongs_to(name: str, life: str) -> None:
    assert life_of(name) == life
