"""Payloads read back through a window on their local log: the bytes asked for, in any
order, with a bounded number of bytes read per byte used."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from prs_runner.output.commit_log import CommitLog, read_commits
from prs_runner.output.payload_reads import (
    AMPLIFICATION,
    WINDOW_BYTES,
    WINDOWS_HELD,
    LocalLog,
    PayloadReader,
    read_payloads,
)
from prs_runner.storage.filesystem import Storage
from tests.unit.test_commit_log import header

Places = list[tuple[int, int]]
SIZES = [1 + (number * 37) % 300 for number in range(2000)]  # 300 KB of small payloads


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[tuple[LocalLog, bytes, Places]]:
    """A payload file of SIZES (each payload's bytes tell it apart) and its (offset, length)
    places, in the order they were written."""
    payloads = [bytes([number % 251]) * size for number, size in enumerate(SIZES)]
    data = b"".join(payloads)
    path = tmp_path / "life.dat"
    path.write_bytes(data)
    offsets = [sum(SIZES[:number]) for number in range(len(SIZES))]
    fd = os.open(path, os.O_RDONLY)
    yield LocalLog(fd), data, list(zip(offsets, SIZES, strict=True))
    os.close(fd)


def interleaved(places: Places) -> Places:
    """Two runs through the file at once, as two workers' mini-batches taken alternately."""
    half = len(places) // 2
    return [place for pair in zip(places[:half], places[half:], strict=True) for place in pair]


def shuffled(places: Places) -> Places:
    return random.Random(7).sample(places, len(places))


@pytest.mark.parametrize(("order", "most_read"), [
    # in the order written: a window per WINDOW_BYTES, nothing read twice
    (list, lambda used: used + WINDOW_BYTES),
    (lambda places: places[::-1], lambda used: AMPLIFICATION * used + 2 * WINDOW_BYTES),
    (interleaved, lambda used: AMPLIFICATION * used + 2 * WINDOW_BYTES),
    (shuffled, lambda used: AMPLIFICATION * used + 2 * WINDOW_BYTES),
])
def test_every_payload_is_read_as_written_and_reads_stay_bounded(
    log_file: tuple[LocalLog, bytes, Places], order: Callable[[Places], Places],
    most_read: Callable[[int], int],
) -> None:
    log, data, places = log_file
    for offset, length in order(places):
        assert log.payload(offset, length) == data[offset:offset + length]
    assert log.used == len(data)
    assert log.read <= most_read(len(data))


def test_payloads_in_order_take_one_read_per_window(
    log_file: tuple[LocalLog, bytes, Places], monkeypatch: pytest.MonkeyPatch
) -> None:
    log, data, places = log_file
    reads: list[int] = []
    real_pread = os.pread

    def counted(fd: int, length: int, offset: int) -> bytes:
        reads.append(length)
        return real_pread(fd, length, offset)

    monkeypatch.setattr(os, "pread", counted)
    for offset, length in places:
        log.payload(offset, length)
    windows = -(-len(data) // WINDOW_BYTES)
    assert windows <= len(reads) <= windows + len(data) // WINDOW_BYTES  # a window's tail cut
    assert len(reads) < len(places) // 50


def test_a_large_payload_is_read_alone_and_a_short_file_gives_what_it_holds(
    tmp_path: Path
) -> None:
    path = tmp_path / "life.dat"
    path.write_bytes(b"a" * 10 + b"b" * (2 * WINDOW_BYTES) + b"c" * 5)
    fd = os.open(path, os.O_RDONLY)
    try:
        log = LocalLog(fd)
        assert log.payload(10, 2 * WINDOW_BYTES) == b"b" * (2 * WINDOW_BYTES)
        assert log.read == 2 * WINDOW_BYTES and log.window == b""
        assert log.payload(0, 10) == b"a" * 10  # a window from here on
        assert log.payload(2 * WINDOW_BYTES + 10, 5) == b"c" * 5
        assert log.payload(2 * WINDOW_BYTES + 12, 8) == b"c" * 3  # torn: the file ends first
    finally:
        os.close(fd)


def test_the_merge_gets_each_commits_payload_through_the_windows(tmp_path: Path) -> None:
    output = Storage(str(tmp_path))
    logs = [CommitLog(output, f"life-{number}") for number in range(2)]
    for mb_id in range(600):
        logs[mb_id % 2].add(header(mb_id), f"payload {mb_id}\n".encode() * (mb_id % 5))
    for log in logs:
        log.close()
    commits = sorted(read_commits(output), key=lambda commit: commit.header.id)
    payloads = list(read_payloads(output, commits))
    assert payloads == [f"payload {mb_id}\n".encode() * (mb_id % 5) for mb_id in range(600)]


def test_a_folder_in_place_of_a_payload_file_gives_no_payload(tmp_path: Path) -> None:
    output = Storage(str(tmp_path))
    log = CommitLog(output, "life-0")
    log.add(header(0), b"zero\n")
    log.close()
    (tmp_path / "_prs/commits/life-0.dat").unlink()
    (tmp_path / "_prs/commits/life-0.dat").mkdir()
    assert list(read_payloads(output, read_commits(output))) == [None]


def test_a_merge_of_many_lives_holds_a_few_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = Storage(str(tmp_path))
    lives = 3 * WINDOWS_HELD
    logs = [CommitLog(output, f"life-{number:03d}") for number in range(lives)]
    for mb_id in range(20 * lives):  # each life's next one, in turn
        logs[mb_id % lives].add(header(mb_id), f"{mb_id}\n".encode())
    for log in logs:
        log.close()
    held: list[int] = []
    real_hold = PayloadReader.hold_window

    def counted(reader: PayloadReader, stem: str, log: LocalLog) -> None:
        real_hold(reader, stem, log)
        held.append(sum(bool(log.window) for log in reader.files.values()
                        if isinstance(log, LocalLog)))

    monkeypatch.setattr(PayloadReader, "hold_window", counted)
    commits = sorted(read_commits(output), key=lambda commit: commit.header.id)
    assert list(read_payloads(output, commits)) == [f"{n}\n".encode() for n in range(20 * lives)]
    assert max(held) == WINDOWS_HELD
