"""Which mini-batches have a commit, for a shard that looks for work (execution.steals): one
bit per mini-batch, kept up to date by reading only what the commit logs gained since the
last look, so that neither its memory nor a look costs a set of every id in the input.

A local index only grows: a line is appended whole, and a write that fails is cut back
before the next one (commit_log). So a local index is read on from where the last read
stopped, up to its last whole line (the next look reads the rest). An object store's index
parts never change once written, so each is read once. A torn line ends what its log
commits, as everywhere (commit_index.index_runs). When a merge has voided records (rare),
every look decodes the records instead, as read_commits does.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from prs_runner.output.commit_index import index_runs
from prs_runner.output.commit_log import COMMITS_DIR, VOID_PREFIX, life_of, read_commits
from prs_runner.storage.filesystem import Storage

READ_CHUNK = 1 << 20  # bytes of a local index read at once
PACE_WEIGHT = 0.2  # of the newest record in a shard's moving average


@dataclass
class ShardPace:
    """A shard's runs as its commits show them: seconds per mini-batch (a moving average in
    the order they were read), when the first one began and when the newest one of each
    worker life ended (Unix seconds; 0: unknown)."""

    seconds: float = 0.0
    first_start: float = 0.0
    ends: dict[str, float] = field(default_factory=dict)

    def ran(self, life: str, seconds: float, ended: float | None) -> None:
        self.seconds = seconds if not self.seconds else (
            (1 - PACE_WEIGHT) * self.seconds + PACE_WEIGHT * seconds)
        if ended:
            self.ends[life] = max(self.ends.get(life, 0.0), ended)
            started = ended - seconds
            self.first_start = min(self.first_start or started, started)


class CommittedSet:
    def __init__(self, output: Storage, count: int) -> None:
        self.output, self.count = output, count
        self.bits = bytearray((count + 7) // 8)
        self.read_to: dict[str, int] = {}  # index name: bytes read of it, whole lines
        self.ended: set[str] = set()  # index names with a torn line: nothing after it counts
        self.paces: dict[int, ShardPace] = {}  # of each shard that ran what was read

    def __contains__(self, mb_id: object) -> bool:
        if not isinstance(mb_id, int) or not 0 <= mb_id < self.count:
            return False
        return bool(self.bits[mb_id >> 3] >> (mb_id & 7) & 1)

    def add(self, mb_id: int) -> None:
        if 0 <= mb_id < self.count:
            self.bits[mb_id >> 3] |= 1 << (mb_id & 7)

    def count_in(self, ids: range) -> int:
        """How many of IDS (a step-1 range) have a commit."""
        start, stop = max(ids.start, 0), min(ids.stop, self.count)
        if start >= stop:
            return 0
        window = int.from_bytes(self.bits[start >> 3 : ((stop - 1) >> 3) + 1], "little")
        return (window >> (start & 7) & ((1 << (stop - start)) - 1)).bit_count()

    def refresh(self) -> CommittedSet:
        """Read what the logs gained since the last look; self."""
        names = self.output.list_names(COMMITS_DIR)
        if any(name.startswith(VOID_PREFIX) for name in names):
            self.bits = bytearray(len(self.bits))
            self.read_to.clear()
            self.ended.clear()
            for commit in read_commits(self.output):
                self.add(commit.header.id)
            return self
        for name in names:
            if name.endswith(".idx") and name not in self.ended:
                self.read_on(name)
        return self

    def read_on(self, name: str) -> None:
        path = f"{COMMITS_DIR}/{name}"
        with contextlib.suppress(FileNotFoundError):
            if self.output.local is None:
                # A part is written once, whole (read empty: its upload was still open).
                if not self.read_to.get(name):
                    self.take_lines(name, self.output.read_bytes(path))
                return
            with self.output.open_seekable(path) as stream:
                stream.seek(self.read_to.get(name, 0))
                # A log of a long run holds many lines: a chunk at a time keeps this small.
                while name not in self.ended:
                    chunk = stream.read(READ_CHUNK)
                    if len(chunk) == READ_CHUNK:
                        chunk += stream.readline()  # on to the end of the line it cut
                    self.take_lines(name, chunk)
                    if len(chunk) < READ_CHUNK:
                        return

    def take_lines(self, name: str, data: bytes) -> None:
        """Add the runs of DATA's whole lines (read on from where NAME was read to)."""
        whole = data[: data.rfind(b"\n") + 1]
        runs = index_runs(whole)
        life = life_of(name)
        for run in runs:
            self.add(run.id)
            pace = self.paces.setdefault(run.shard, ShardPace())
            pace.ran(life, run.seconds, run.ended)
        if len(runs) < whole.count(b"\n"):
            self.ended.add(name)
        self.read_to[name] = self.read_to.get(name, 0) + len(whole)
