"""Files input on object storage: run() receives local paths, as in Azure's download mode.

Each worker downloads a mini-batch's files into a folder of its own under /tmp (TMPDIR, an
emptyDir in pods), several at a time, and starts on the next two mini-batches the supervisor
has already sent while run() works on the current one. The cache holds at most those three
mini-batches: a mini-batch's folder is removed once its result is committed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from prs_runner.storage.filesystem import Storage, relative_parts

DOWNLOAD_THREADS = 8


class DownloadCache:
    def __init__(self, source: Storage, label: str, threads: int = DOWNLOAD_THREADS,
                 within: str | None = None) -> None:
        """WITHIN: the folder to make its own in (the shard's scratch folder), else TMPDIR."""
        self.source = source
        self.root = tempfile.mkdtemp(prefix=f"prs-input-{label}-", dir=within)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="prs-download")
        self.started: dict[int, list[Future[int]]] = {}
        self.lock = threading.Lock()  # the command reader starts downloads too

    def folder(self, mb_id: int) -> str:
        return os.path.join(self.root, str(mb_id))

    def local_path(self, mb_id: int, item: str) -> str:
        return os.path.join(self.folder(mb_id), *relative_parts(item))

    def start(self, mb_id: int, items: Sequence[str]) -> None:
        """Begin downloading MB_ID's files (once), without waiting for them."""
        with self.lock:
            if mb_id in self.started:
                return
            self.started[mb_id] = [
                self.pool.submit(self.fetch, item, self.local_path(mb_id, item))
                for item in items
            ]

    def fetch(self, item: str, target: str) -> int:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        return self.source.download(item, target)

    def paths(self, mb_id: int, items: Sequence[str]) -> list[str]:
        """MB_ID's files as local paths, once all are downloaded (the first error raises)."""
        self.start(mb_id, items)
        for future in self.started[mb_id]:
            future.result()
        return [self.local_path(mb_id, item) for item in items]

    def release(self, mb_id: int) -> None:
        """Forget MB_ID's files (its result is committed, or it failed and may be retried)."""
        with self.lock:
            futures = self.started.pop(mb_id, [])
        for future in futures:
            future.cancel()
        for future in futures:
            if not future.cancelled():
                future.exception()  # wait: a running download must not refill the folder
        shutil.rmtree(self.folder(mb_id), ignore_errors=True)

    def close(self) -> None:
        for mb_id in list(self.started):
            self.release(mb_id)
        self.pool.shutdown(wait=True)
        shutil.rmtree(self.root, ignore_errors=True)


def fetch_side_inputs(side_inputs: Sequence[dict[str, str]],
                      within: Callable[[], str]) -> dict[str, str]:
    """Side inputs on object storage, downloaded once per shard before its workers start,
    each into a folder of its own in WITHIN() (the shard's scratch folder): name -> the
    local file (a URI naming one object) or folder (a prefix). Local side inputs are left
    out: workers read them where they are."""
    local: dict[str, str] = {}
    for side in side_inputs:
        source = Storage(side["uri"])
        if source.local is not None:
            continue
        folder = tempfile.mkdtemp(prefix="side-", dir=within())
        entries = source.list_files()
        if source.is_file():
            target = os.path.join(folder, entries[0].path)
            Storage(side["uri"].rsplit("/", 1)[0]).download(entries[0].path, target)
            local[side["name"]] = target
            continue
        for entry in entries:
            target = os.path.join(folder, *relative_parts(entry.path))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            source.download(entry.path, target)
        local[side["name"]] = folder
    return local
