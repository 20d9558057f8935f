"""One run per output at a time: an exclusive lock on `_prs/lock` for the whole run.

On a local folder (or a mounted claim) the lock is `flock(2)` on that file: the kernel
releases it when the holder dies however it dies, so a stale lock is never left behind and
the next run takes it over at once. The file holds who has it (host, pid, start time) so a
second run can say whom it is waiting for. The lock file survives `--fresh`: deleting it
while it is held would let a third run lock a new file beside the holder.

Remote object storage has no flock; there the lock is not taken (see the README).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator

from prs_runner.storage.filesystem import Storage

LOCK_FILE = "_prs/lock"


class OutputInUse(RuntimeError):
    """Another live run holds the output's lock."""


def holder_text(raw: bytes) -> str:
    try:
        holder = json.loads(raw)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder["started"])))
        return f"pid {int(holder['pid'])} on {holder['host']!s}, running since {since}"
    except (ValueError, KeyError, TypeError):
        return "another run (no holder recorded yet)"


@contextlib.contextmanager
def output_lock(output: Storage) -> Iterator[None]:
    """Hold the output's lock for the block; OutputInUse at once if another run has it."""
    if output.local is None:
        yield
        return
    fd = output.open_lock_file(LOCK_FILE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputInUse(
                f"output {output.uri} is in use by {holder_text(os.pread(fd, 4096, 0))}; "
                "wait for it to finish or stop it, or pass another --output"
            ) from None
        me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        data = json.dumps(me).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays for the next run
