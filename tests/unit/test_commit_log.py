"""Commit logs on a real local folder: appends, what a failed write leaves, lives, voids."""

from __future__ import annotations

import dataclasses
import os
import resource
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from prs_runner.output.commit_index import Commit, chosen, encode_line
from prs_runner.output.commit_log import (
    CommitFollower,
    CommitLog,
    life_name,
    read_commits,
    read_life,
    void,
)
from prs_runner.output.payload_reads import read_payloads
from prs_runner.output.results import SUCCEEDED, ResultHeader
from prs_runner.storage.filesystem import Storage


def header(mb_id: int) -> ResultHeader:
    return ResultHeader(id=mb_id, shard=0, process=0, tries=1, items=1, succeeded=1, failed=0,
                        seconds=0.0, status=SUCCEEDED)


@pytest.fixture
def output(tmp_path: Path) -> Storage:
    return Storage(str(tmp_path))


def payloads_of(output: Storage) -> dict[int, bytes | None]:
    commits = chosen(read_commits(output))
    ids = sorted(commits)
    return dict(zip(ids, read_payloads(output, [commits[i] for i in ids]), strict=True))


def test_records_are_committed_as_they_are_added(output: Storage) -> None:
    log = CommitLog(output, "0000000000000001-0-0-1")
    log.add(header(3), b"three\n")
    assert payloads_of(output) == {3: b"three\n"}  # before close: committed on add
    log.add(header(1), b"")
    log.add(header(2), b"two\n" * 1000)
    log.close()
    assert payloads_of(output) == {1: b"", 2: b"two\n" * 1000, 3: b"three\n"}
    assert [c.header.id for c in read_life(output, log.life)] == [3, 1, 2]


def test_lives_are_read_apart_and_names_sort_by_start(output: Storage) -> None:
    first, second = life_name(0, "0"), life_name(0, "1")
    assert first < second and first.endswith(f"-0-0-{__import__('os').getpid()}")
    for life, mb_id in ((first, 1), (second, 2)):
        log = CommitLog(output, life)
        log.add(header(mb_id), b"x")
        log.close()
    assert [c.header.id for c in read_life(output, first)] == [1]
    assert sorted(c.header.id for c in read_commits(output)) == [1, 2]


@pytest.fixture
def file_size_limit(tmp_path: Path) -> Iterator[int]:
    """Writes past 64 KiB fail with EFBIG, as on a full disk (the signal is ignored)."""
    limit = 64 << 10
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_failed_write_is_cut_back_and_commits_nothing(
    output: Storage, file_size_limit: int
) -> None:
    log = CommitLog(output, "life")
    log.add(header(0), b"a" * 1000)
    with pytest.raises(OSError):
        log.add(header(1), b"b" * file_size_limit)
    log.add(header(2), b"c" * 10)  # the log goes on where it was
    log.close()
    assert payloads_of(output) == {0: b"a" * 1000, 2: b"c" * 10}
    assert (Path(output.uri) / "_prs/commits/life.dat").stat().st_size == 1010


def test_a_torn_payload_reads_as_none_and_a_void_hides_its_commit(output: Storage) -> None:
    log = CommitLog(output, "life")
    log.add(header(0), b"kept")
    log.add(header(1), b"lost")
    log.close()
    data = Path(output.uri) / "_prs/commits/life.dat"
    data.write_bytes(b"kept" + b"\0\0\0\0")
    assert payloads_of(output) == {0: b"kept", 1: None}
    void(output, [c for c in read_commits(output) if c.header.id == 1])
    assert payloads_of(output) == {0: b"kept"}
    void(output, [])
    assert len(list((Path(output.uri) / "_prs/commits").glob("void-*"))) == 1


def test_a_missing_payload_file_and_no_commit_read_as_none(output: Storage) -> None:
    log = CommitLog(output, "life")
    log.add(header(0), b"x")
    log.close()
    commit = read_commits(output)[0]
    (Path(output.uri) / "_prs/commits/life.dat").unlink()
    assert list(read_payloads(output, [None, commit])) == [None, None]


def test_an_empty_payload_is_read_without_its_file(output: Storage) -> None:
    """summary_only records carry no payload: the merge need not open (on an object store:
    request) the payload file for them, and an index line that says otherwise is torn."""
    log = CommitLog(output, "life")
    log.add(header(0), b"")
    log.add(header(1), b"")
    log.close()
    first, second = read_commits(output)
    (Path(output.uri) / "_prs/commits/life.dat").unlink()
    torn = dataclasses.replace(second, crc=second.crc + 1)
    assert list(read_payloads(output, [first, torn])) == [b"", None]


def test_a_symlinked_commits_folder_is_refused(output: Storage, tmp_path: Path) -> None:
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    (tmp_path / "_prs").mkdir()
    (tmp_path / "_prs/commits").symlink_to(elsewhere)
    with pytest.raises(OSError):
        CommitLog(output, "life").add(header(0), b"x")
    assert list(elsewhere.iterdir()) == []


def places(commits: list[Commit]) -> list[tuple[str, int, int]]:
    return sorted((c.life, c.line, c.header.id) for c in commits)


def test_a_follower_takes_each_log_as_it_grows_and_ends_with_what_the_merge_reads(
    output: Storage,
) -> None:
    first = CommitLog(output, "0000000000000001-0-0-1")
    first.add(header(0), b"zero")
    first.add(header(1), b"")
    follower = CommitFollower(output)
    follower.follow()
    assert places(follower.found) == [(first.life, 0, 0), (first.life, 1, 1)]
    first.add(header(2), b"two")
    second = CommitLog(output, "0000000000000002-0-1-1")  # a life that starts later
    second.add(header(3), b"three")
    follower.follow()
    follower.follow()  # nothing new: nothing taken twice
    assert places(follower.found) == [(first.life, 0, 0), (first.life, 1, 1),
                                      (first.life, 2, 2), (second.life, 0, 3)]
    first.close()
    second.close()
    assert places(follower.commits()) == places(read_commits(output))


def test_a_line_being_appended_is_taken_once_it_is_whole(output: Storage) -> None:
    index = Path(output.uri) / "_prs/commits/life.idx"
    index.parent.mkdir(parents=True)
    lines = [encode_line(header(i), 0, 0, 0) for i in range(3)]
    index.write_bytes(lines[0] + lines[1][:20])
    follower = CommitFollower(output)
    follower.follow()
    assert places(follower.found) == [("life", 0, 0)]
    with index.open("ab") as stream:
        stream.write(lines[1][20:] + lines[2])
    follower.follow()
    assert places(follower.found) == [("life", 0, 0), ("life", 1, 1), ("life", 2, 2)]


def test_a_torn_line_ends_a_followed_log_as_it_ends_a_read_one(output: Storage) -> None:
    """A whole line whose checksum fails, and one cut short when the logs have ended:
    nothing after either counts, though sound lines follow the first."""
    index = Path(output.uri) / "_prs/commits/life.idx"
    index.parent.mkdir(parents=True)
    lines = [encode_line(header(i), 0, 0, 0) for i in range(4)]
    index.write_bytes(lines[0] + b"0" + lines[1][1:])
    follower = CommitFollower(output)
    follower.follow()
    index.write_bytes(lines[0] + b"0" + lines[1][1:] + lines[2])
    follower.follow()
    assert places(follower.found) == [("life", 0, 0)]
    cut = Path(output.uri) / "_prs/commits/cut.idx"
    cut.write_bytes(lines[3] + lines[2][:-1])  # the shards have ended: never finished
    follower.follow()
    assert places(follower.commits()) == [("cut", 0, 3), ("life", 0, 0)]
    assert places(follower.commits()) == places(read_commits(output))


def test_a_follower_hides_voided_commits_as_the_merge_does(output: Storage) -> None:
    log = CommitLog(output, "life")
    log.add(header(0), b"a")
    log.add(header(1), b"b")
    follower = CommitFollower(output)
    follower.follow()
    void(output, [c for c in read_commits(output) if c.header.id == 1])
    log.close()
    assert places(follower.commits()) == [("life", 0, 0)]


def test_a_follower_that_could_not_read_leaves_the_merge_to_read_everything(
    output: Storage,
) -> None:
    log = CommitLog(output, "life")
    log.add(header(0), b"a")
    odd = Path(output.uri) / "_prs/commits/odd.idx"
    odd.mkdir()  # not a file: reading it fails
    follower = CommitFollower(output)
    follower.follow()
    assert follower.failed
    odd.rmdir()
    log.add(header(1), b"b")
    follower.follow()  # no longer looks: what it took before the failure stays as it was
    assert places(follower.found) == [("life", 0, 0)]
    log.close()
    assert places(follower.commits()) == [("life", 0, 0), ("life", 1, 1)]


def flip_first_byte(commits: Path) -> None:
    index = commits / "life.idx"
    data = index.read_bytes()
    index.write_bytes((b"0" if data[:1] != b"0" else b"1") + data[1:])


def cut_in_half(commits: Path) -> None:
    index = commits / "life.idx"
    index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])


def link_an_index(commits: Path) -> None:
    (commits / "zz.idx").symlink_to("/nonexistent")


def remove_the_index(commits: Path) -> None:
    (commits / "life.idx").unlink()


@pytest.mark.parametrize("tamper", [flip_first_byte, cut_in_half, link_an_index,
                                    remove_the_index])
def test_a_follower_whose_logs_were_written_by_another_gives_what_a_fresh_read_gives(
    output: Storage, tamper: Callable[[Path], None]
) -> None:
    """The logs are only ever appended to by their worker; should something else change
    what the follower decoded, or put what it cannot read in the folder, its commits are
    still those a fresh read of the folder gives at the end (it reads anew)."""
    log = CommitLog(output, "life")
    for mb_id in range(4):
        log.add(header(mb_id), b"x")
    follower = CommitFollower(output)
    follower.follow()
    assert len(follower.found) == 4
    tamper(Path(output.uri) / "_prs/commits")
    log.add(header(4), b"y")
    log.close()
    assert places(follower.commits()) == places(read_commits(output))


def test_a_line_appended_by_another_and_then_written_over_is_read_as_it_ends(
    output: Storage,
) -> None:
    """A worker writes its log at its own offset: a newline appended by something else, read
    as a torn (empty) line while the worker idled, is then written over by its next line."""
    log = CommitLog(output, "life")
    log.add(header(0), b"a")
    with (Path(output.uri) / "_prs/commits/life.idx").open("ab") as stream:
        stream.write(b"\n")
    follower = CommitFollower(output)
    follower.follow()
    assert follower.torn == {"life"}
    log.add(header(1), b"b")
    log.close()
    assert places(follower.commits()) == [("life", 0, 0), ("life", 1, 1)]


def test_a_fifo_in_the_logs_does_not_hold_a_follower(output: Storage) -> None:
    log = CommitLog(output, "life")
    log.add(header(0), b"a")
    fifo = Path(output.uri) / "_prs/commits/odd.idx"
    os.mkfifo(fifo)
    follower = CommitFollower(output)
    look = threading.Thread(target=follower.follow, daemon=True)
    look.start()
    look.join(timeout=10)
    assert not look.is_alive() and follower.failed
    fifo.unlink()
    log.close()
    assert places(follower.commits()) == [("life", 0, 0)]
