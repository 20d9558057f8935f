"""Commit logs: each worker life (and each shard supervisor) commits the records of its
mini-batches into a log of its own under `_prs/commits/`, not one file per mini-batch.

Locally a log is two files, appended to: `<life>.dat` holds the payloads and `<life>.idx`
one index line per record (see commit_index). The payload is written first and the line
after it, so a record is committed exactly when its index line is whole; a write that fails
(a full disk) is cut back off both files, and the mini-batch is not committed.

Objects cannot be appended to. On an object store a life writes parts instead:
`<life>-<part>.dat`, then `<life>-<part>.idx`, each holding the records gathered over about a
second (or 8 MB), so that small mini-batches cost one pair of PUTs per part, not one each,
and a resume or the merge reads a few index objects instead of listing one per mini-batch.

A log's stem (`<life>` or `<life>-<part>`) sorts by the life's start, so that `chosen` can
prefer the later of two records.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from prs_runner.output.commit_index import (
    Commit,
    damage,
    decode_index,
    decode_lines,
    encode_line,
    payload_crc,
)
from prs_runner.output.results import ResultHeader
from prs_runner.storage.filesystem import Storage
from prs_runner.storage.local_descriptors import new_log_file, read_descriptor
from prs_runner.storage.local_files import write_all

COMMITS_DIR = "_prs/commits"
VOID_PREFIX = "void-"
FETCHERS = 16


def life_name(shard: int, role: str) -> str:
    """A new life's name: its start first (hex nanoseconds), so names sort by start."""
    return f"{time.time_ns():016x}-{shard}-{role}-{os.getpid()}"


def life_of(index_name: str) -> str:
    """The worker life an index belongs to: `<life>.idx` locally, `<life>-<part>.idx` on
    an object store (a life is `<start>-<shard>-<role>-<pid>`, life_name)."""
    return "-".join(index_name.removesuffix(".idx").split("-")[:4])


class CommitLog:
    def __init__(self, output: Storage, life: str) -> None:
        self.output, self.life = output, life
        self.fds: tuple[int, int] | None = None  # local: (payloads, index)
        self.sizes = (0, 0)
        self.part = 0
        self.held: list[tuple[ResultHeader, bytes]] = []  # object store: the next part
        self.held_bytes = 0

    def add(self, header: ResultHeader, payload: bytes) -> None:
        """Locally the record is committed when this returns; on an object store it is held
        for the next part (`flush`)."""
        if self.output.local is None:
            self.held.append((header, payload))
            self.held_bytes += len(payload)
            return
        payloads, index = self.open()
        start, index_size = self.sizes
        line = encode_line(header, start, len(payload), payload_crc(payload))
        try:
            write_all(payloads, payload)
            write_all(index, line)
        except OSError:
            # What was written of it is not committed: cut it off, and write the next
            # record where this one began.
            with contextlib.suppress(OSError):
                for fd, size in ((index, index_size), (payloads, start)):
                    os.ftruncate(fd, size)
                    os.lseek(fd, size, os.SEEK_SET)
            raise
        self.sizes = (start + len(payload), index_size + len(line))

    def open(self) -> tuple[int, int]:
        if self.fds is None:
            stem = f"{COMMITS_DIR}/{self.life}"
            self.fds = (new_log_file(self.output, f"{stem}.dat"),
                        new_log_file(self.output, f"{stem}.idx"))
        return self.fds

    def flush(self) -> list[ResultHeader]:
        """Object store: write the held records as one part; the headers committed."""
        if not self.held:
            return []
        payloads, lines, offset = [], [], 0
        for header, payload in self.held:
            lines.append(encode_line(header, offset, len(payload), payload_crc(payload)))
            payloads.append(payload)
            offset += len(payload)
        stem = f"{COMMITS_DIR}/{self.life}-{self.part:06d}"
        self.output.write_atomic(f"{stem}.dat", b"".join(payloads))
        self.output.write_atomic(f"{stem}.idx", b"".join(lines))  # the commit
        self.part += 1
        committed = [header for header, _ in self.held]
        self.held, self.held_bytes = [], 0
        return committed

    def close(self) -> None:
        if self.fds is not None:
            for fd in self.fds:
                os.close(fd)
            self.fds = None


def read_commits(output: Storage, wanted: Callable[[int], bool] | None = None) -> list[Commit]:
    """Every commit in the output's logs (of the mini-batches WANTED, when given: a shard's
    memory then holds its own), but those a merge found torn (`void`)."""
    names = output.list_names(COMMITS_DIR)
    stems = index_stems(names)
    return without_voided(output, names, [c for part in read_indexes(output, stems, wanted)
                                          for c in part])


def without_voided(output: Storage, names: list[str], commits: list[Commit]) -> list[Commit]:
    """COMMITS but those the void files among NAMES (the commits folder's) mark torn."""
    voided = read_voids(output, [n for n in names if n.startswith(VOID_PREFIX)])
    return [c for c in commits if (c.life, c.line) not in voided] if voided else commits


class CommitFollower:
    """A local output's commits read while the shards write them, each index from where
    the last look left off: `prs run` follows its shards' logs while they run (a core is
    mostly idle then), so that its merge decodes only what came last, not every line at
    once. (Not on an object store: there each look would be a billed listing.) While a log
    may still grow only whole lines are taken (one being appended is read at the next
    look), and an index is never read past a torn line (nothing after it counts).

    `commits()`, called once the shards have ended, gives what `read_commits` would then.
    It reads each index whole once more (reading is cheap, decoding is what costs) and
    decodes only the bytes it had not. The logs are only ever appended to, but should the
    bytes it decoded earlier not be there as they were (another writer in the folder), or
    should anything fail, it leaves the reading to `read_commits` instead."""

    def __init__(self, output: Storage) -> None:
        assert output.local is not None, "object stores are read once, by the merge"
        self.output = output
        self.indexes: dict[str, FollowedIndex] = {}  # by stem: what was taken of each
        self.found: list[Commit] = []
        self.failed = False

    @property
    def torn(self) -> set[str]:
        """The indexes read up to a torn line: never read again."""
        return {stem for stem, index in self.indexes.items() if index.torn}

    def follow(self) -> None:
        """Take what the logs gained since the last look."""
        if self.failed:
            return
        try:
            for stem in index_stems(self.output.list_names(COMMITS_DIR)):
                index = self.indexes.setdefault(stem, FollowedIndex())
                if not index.torn:
                    with contextlib.suppress(FileNotFoundError):
                        self.take(stem, self.read(stem, index.length), complete=False)
        except Exception:  # any: following only saves time; the merge then reads it all
            self.failed = True

    def commits(self) -> list[Commit]:
        """Every commit, once nothing writes to the logs any more."""
        if not self.failed:
            with contextlib.suppress(Exception):  # any, as in follow()
                return self.finish()
        return read_commits(self.output)

    def finish(self) -> list[Commit]:
        names = self.output.list_names(COMMITS_DIR)
        stems = index_stems(names)
        if not {s for s, index in self.indexes.items() if index.length} <= set(stems):
            raise FollowedIndexChanged("an index it read is gone")
        for stem in stems:
            index = self.indexes.setdefault(stem, FollowedIndex())
            data = self.read(stem, 0)
            if not index.holds(data):
                raise FollowedIndexChanged(f"{stem}.idx is not as it was read")
            if not index.torn:
                self.take(stem, data[index.length:], complete=True)
        return without_voided(self.output, names, self.found)

    def take(self, stem: str, data: bytes, complete: bool) -> None:
        """DATA: the index's bytes past those decoded. COMPLETE: the log has ended, so a last
        line without its newline is torn rather than still being written."""
        whole = data if complete else data[: data.rfind(b"\n") + 1]
        index = self.indexes[stem]
        commits, index.torn = decode_lines(whole, stem, index.lines)
        self.found.extend(commits)
        index.lines += len(commits)
        index.length += len(whole)
        index.crc = zlib.crc32(whole, index.crc)

    def read(self, stem: str, start: int) -> bytes:
        """The index's bytes from START on; opened without waiting (a FIFO in its place
        would hold `prs run` while its shards run) and never through a symlink."""
        fd = read_descriptor(self.output, f"{COMMITS_DIR}/{stem}.idx", os.O_NONBLOCK)
        try:
            return os.pread(fd, max(os.fstat(fd).st_size - start, 0), start)
        finally:
            os.close(fd)


@dataclass
class FollowedIndex:
    """What a follower took of one index: its first LENGTH bytes (their CRC-32), that many
    LINES decoded, and whether it ended at a torn one."""

    length: int = 0
    crc: int = 0
    lines: int = 0
    torn: bool = False

    def holds(self, data: bytes) -> bool:
        """Whether DATA, the index read whole, starts with the bytes taken."""
        return len(data) >= self.length and zlib.crc32(memoryview(data)[:self.length]) == self.crc


class FollowedIndexChanged(Exception):
    """Bytes the follower decoded are not in the index any more: it is read anew."""


def index_stems(names: Iterable[str]) -> list[str]:
    return [name[:-4] for name in names if name.endswith(".idx")]


def read_life(output: Storage, life: str) -> list[Commit]:
    """The commits of one life (a worker that died: which of its mini-batches are done)."""
    if output.local is not None:
        return read_indexes(output, [life])[0]
    stems = sorted(name[:-4] for name in output.list_names(COMMITS_DIR)
                   if name.startswith(f"{life}-") and name.endswith(".idx"))
    return [commit for commits in read_indexes(output, stems) for commit in commits]


def read_life_after(output: Storage, life: str, known: int) -> list[Commit]:
    """A local life's commits past its first KNOWN (those its supervisor was told of)."""
    assert output.local is not None, "a local life's index is one file"
    try:
        data = output.read_bytes(f"{COMMITS_DIR}/{life}.idx")
    except FileNotFoundError:
        return []
    lines = data.splitlines(keepends=True)[known:]
    return decode_lines(b"".join(lines), life, known)[0]


def read_indexes(output: Storage, stems: list[str],
                 wanted: Callable[[int], bool] | None = None) -> list[list[Commit]]:
    def read(stem: str) -> list[Commit]:
        try:
            return decode_index(output.read_bytes(f"{COMMITS_DIR}/{stem}.idx"), stem, wanted)
        except FileNotFoundError:
            return []

    if output.local is not None or len(stems) < 2:
        return [read(stem) for stem in stems]
    with ThreadPoolExecutor(FETCHERS, thread_name_prefix="prs-read-index") as pool:
        return list(pool.map(read, stems))


def damaged_indexes(output: Storage) -> list[str]:
    """The logs whose index has sound lines after a torn one (commit_index.damage), each
    said in a few words."""
    said = []
    for stem in index_stems(output.list_names(COMMITS_DIR)):
        try:
            found = damage(output.read_bytes(f"{COMMITS_DIR}/{stem}.idx"))
        except FileNotFoundError:
            continue
        if found is not None:
            line, after = found
            said.append(f"{COMMITS_DIR}/{stem}.idx is damaged at line {line + 1} (the "
                        f"{after} records after it do not count)")
    return said


def read_voids(output: Storage, names: list[str]) -> set[tuple[str, int]]:
    voided: set[tuple[str, int]] = set()
    for name in names:
        with contextlib.suppress(FileNotFoundError, ValueError):
            voided.update((stem, line) for stem, line in
                          json.loads(output.read_bytes(f"{COMMITS_DIR}/{name}")))
    return voided


def void(output: Storage, commits: list[Commit]) -> None:
    """Mark COMMITS as not committed: their payloads were found torn, so their mini-batches
    run again on the next run (records are never rewritten in place)."""
    if commits:
        places = [[c.life, c.line] for c in commits]
        name = f"{COMMITS_DIR}/{VOID_PREFIX}{time.time_ns():016x}-{os.getpid()}.json"
        output.write_atomic(name, json.dumps(places).encode())
