"""Reading committed payloads back, in mini-batch order, for the merge.

Locally a mini-batch's payload is a slice of its life's payload file. The merge wants them
in mini-batch order, and a life wrote its mini-batches mostly in that order, so a small
payload is read with the WINDOW_BYTES after it (one pread for the next hundreds of small
payloads, not one each). Should a life's payloads be wanted out of order (a resume, work
taken from another shard), a window is mostly wasted: once a log's reads exceed
AMPLIFICATION times the bytes used, it is read payload by payload. The windows of the
WINDOWS_HELD logs read last are kept. On an object store each payload is one ranged read,
several in flight at once.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

from prs_runner.output.commit_index import Commit, payload_crc
from prs_runner.output.commit_log import COMMITS_DIR, FETCHERS
from prs_runner.storage.filesystem import Storage
from prs_runner.storage.local_descriptors import read_descriptor
from prs_runner.storage.object_reads import object_reads

AHEAD = 64  # payloads held in memory at most while an object store is read ahead
EMPTY_CRC = payload_crc(b"")
WINDOW_BYTES = 1 << 16
AMPLIFICATION = 4  # bytes read per byte used, at most (beyond a window or two)
WINDOWS_HELD = 32  # 2 MiB


class LocalLog:
    """One life's local payload file, read through a window."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.start = 0  # the window: the file's bytes from START on
        self.window = b""
        self.read = 0  # bytes read from the file
        self.used = 0  # bytes of payloads given

    def payload(self, offset: int, length: int) -> bytes:
        """LENGTH bytes at OFFSET (fewer where the file ends first)."""
        self.used += length
        at = offset - self.start
        if at >= 0 and at + length <= len(self.window):
            return self.window[at:at + length]
        if length >= WINDOW_BYTES or self.read > AMPLIFICATION * self.used:
            self.read += length
            return os.pread(self.fd, length, offset)
        self.window, self.start = os.pread(self.fd, WINDOW_BYTES, offset), offset
        self.read += WINDOW_BYTES
        return self.window[:length]


class PayloadReader:
    """Payloads by their commit, checked against its CRC (None: torn). Local logs are read
    through windows on descriptors kept open; object-store parts with one ranged read each."""

    def __init__(self, output: Storage) -> None:
        self.output = output
        self.files: dict[str, IO[bytes] | LocalLog] = {}
        self.lock = threading.Lock()
        # the local logs holding a window, the one read last at the end: a merge of
        # thousands of lives holds WINDOWS_HELD windows, not one per life
        self.windowed: OrderedDict[str, LocalLog] = OrderedDict()

    def read(self, commit: Commit) -> bytes | None:
        if not commit.length:  # summary_only, or run() returned nothing: no file to open
            return b"" if commit.crc == EMPTY_CRC else None
        handle = self.handle(commit.life)
        if isinstance(handle, LocalLog):
            data = handle.payload(commit.offset, commit.length)
            self.hold_window(commit.life, handle)
        else:
            read_at = object_reads(handle)
            assert read_at is not None, "open_seekable gives a ranged reader on an object store"
            data = read_at(commit.offset, commit.length)
        ok = len(data) == commit.length and payload_crc(data) == commit.crc
        return data if ok else None

    def hold_window(self, stem: str, log: LocalLog) -> None:
        if not log.window:
            return
        self.windowed[stem] = log
        self.windowed.move_to_end(stem)
        if len(self.windowed) > WINDOWS_HELD:
            self.windowed.popitem(last=False)[1].window = b""

    def handle(self, stem: str) -> IO[bytes] | LocalLog:
        with self.lock:
            if stem not in self.files:
                path = f"{COMMITS_DIR}/{stem}.dat"
                if self.output.local is not None:
                    self.files[stem] = LocalLog(read_descriptor(self.output, path))
                else:
                    self.files[stem] = self.output.open_seekable(path)
            return self.files[stem]

    def close(self) -> None:
        for handle in self.files.values():
            if isinstance(handle, LocalLog):
                os.close(handle.fd)
            else:
                handle.close()
        self.files.clear()


def read_payloads(output: Storage, commits: Iterable[Commit | None]) -> Iterator[bytes | None]:
    """Each commit's payload in order (None: no commit, or a torn payload). On an object
    store the next ones are fetched while the current one is used."""
    reader = PayloadReader(output)
    try:
        if output.local is not None:
            for commit in commits:
                yield None if commit is None else payload_or_none(reader, commit)
            return
        yield from read_ahead(reader, iter(commits))
    finally:
        reader.close()


def payload_or_none(reader: PayloadReader, commit: Commit) -> bytes | None:
    try:
        return reader.read(commit)
    except (FileNotFoundError, IsADirectoryError):  # a folder in its place holds no payload
        return None


def read_ahead(reader: PayloadReader, commits: Iterator[Commit | None]) -> Iterator[bytes | None]:
    def fetch(commit: Commit | None) -> bytes | None:
        return None if commit is None else payload_or_none(reader, commit)

    with ThreadPoolExecutor(FETCHERS, thread_name_prefix="prs-read-ahead") as pool:
        window: deque[Future[bytes | None]] = deque()
        for commit in commits:
            window.append(pool.submit(fetch, commit))
            if len(window) >= AHEAD:
                break
        while window:
            head = window.popleft()
            for following in itertools.islice(commits, 1):
                window.append(pool.submit(fetch, following))
            yield head.result()
