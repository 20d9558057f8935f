"""Many small files read in order (the merge reads one record per mini-batch): on an object
store each read is a round trip, so the next ones are fetched while the current one is used.
On a local folder they are opened one by one, as before."""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

from prs_runner.storage.filesystem import Storage

FETCHERS = 16
AHEAD = 64  # files held in memory at most: records are one mini-batch's results each


def read_in_order(storage: Storage, paths: Iterable[str]) -> Iterator[IO[bytes] | None]:
    """Each path's content as a seekable stream, in order; None for a path not there."""
    if storage.local is not None:
        for path in paths:
            yield open_or_none(storage, path)
        return
    pending = iter(paths)
    with ThreadPoolExecutor(FETCHERS, thread_name_prefix="prs-read-ahead") as pool:
        window: deque[Future[IO[bytes] | None]] = deque()
        for path in pending:
            window.append(pool.submit(fetch, storage, path))
            if len(window) >= AHEAD:
                break
        while window:
            head = window.popleft()
            following = next(pending, None)
            if following is not None:
                window.append(pool.submit(fetch, storage, following))
            yield head.result()


def open_or_none(storage: Storage, path: str) -> IO[bytes] | None:
    try:
        return storage.open_seekable(path)
    except FileNotFoundError:
        return None


def fetch(storage: Storage, path: str) -> IO[bytes] | None:
    try:
        return io.BytesIO(storage.read_bytes(path))
    except FileNotFoundError:
        return None
