"""One run per output at a time: an exclusive lock on `_prs/lock` for the whole run.

On a local folder (or a mounted claim) the lock is `flock(2)` on that file: the kernel
releases it when the holder dies however it dies, so a stale lock is never left behind and
the next run takes it over at once. The file holds who has it (host, pid, start time) so a
second run can say whom it is waiting for. The lock file survives `--fresh`: deleting it
while it is held would let a third run lock a new file beside the holder.

Object stores have no flock, and pyarrow exposes no conditional write. There each run writes
a claim object `_prs/lock.d/<id>` and then lists the claims: stores list what was written
before (S3, GCS and Azure Blob are strongly consistent), so of two runs that start together
at least one sees the other, and every run that sees another fresh claim gives up
(OutputInUse) and removes its own. Both may give up; neither can proceed beside the other.
The holder rewrites its claim every CLAIM_REFRESH seconds; a claim not rewritten for
CLAIM_STALE seconds (by the store's clock, compared with our own claim's time) belongs to a
run that died, and is ignored and removed; so is at once the claim of a process of this host
that no longer exists (a killed run, rerun on the same machine).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator

from prs_runner.storage.filesystem import Storage

LOCK_FILE = "_prs/lock"
CLAIMS = "_prs/lock.d"
CLAIM_REFRESH = 30.0
CLAIM_STALE = 120.0


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
        with object_claim(output):
            yield
        return
    fd = output.open_lock_file(LOCK_FILE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputInUse(
                f"output {output.uri} is in use by {holder_text(os.pread(fd, 4096, 0))}; "
                "wait for it to finish or stop it, or pass another --output-uri"
            ) from None
        me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        data = json.dumps(me).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays for the next run


@contextlib.contextmanager
def object_claim(output: Storage) -> Iterator[None]:
    """The lock on an object store (see the module's text)."""
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
    mine = f"{CLAIMS}/{uuid.uuid4().hex}"
    output.write_atomic(mine, json.dumps(me).encode())
    try:
        holder = live_claim(output, mine)
        if holder is not None:
            raise OutputInUse(f"output {output.uri} is in use by {holder_text(holder)}; wait for "
                              "it to finish or stop it, or pass another --output-uri")
        stop = threading.Event()
        refresher = threading.Thread(target=refresh_claim, args=(output, mine, me, stop),
                                     daemon=True, name="prs-output-claim")
        refresher.start()
        try:
            yield
        finally:
            stop.set()
            refresher.join()
    finally:
        with contextlib.suppress(OSError):
            output.delete(mine)


def live_claim(output: Storage, mine: str) -> bytes | None:
    """Another run's fresh claim (its content), removing stale ones on the way."""
    entries = {f"{CLAIMS}/{e.path}": e for e in Storage(output.uri_of(CLAIMS)).list_files()}
    own = entries.get(mine)
    now_ns = own.mtime_ns if own is not None and own.mtime_ns else time.time_ns()
    for path, entry in sorted(entries.items()):
        if path == mine:
            continue
        if now_ns - entry.mtime_ns > CLAIM_STALE * 1e9:
            with contextlib.suppress(OSError):
                output.delete(path)  # its run died without removing it
            continue
        try:
            raw = output.read_bytes(path)
        except FileNotFoundError:
            continue  # that run just ended
        if died_here(raw):
            with contextlib.suppress(OSError):
                output.delete(path)
            continue
        return raw
    return None


def died_here(raw: bytes) -> bool:
    """A claim of a process of this host that is gone (killed): no need to wait it out."""
    try:
        holder = json.loads(raw)
        if holder["host"] != socket.gethostname():
            return False
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except (ValueError, KeyError, TypeError, OSError):
        return False
    return False


def refresh_claim(output: Storage, mine: str, me: dict[str, object],
                  stop: threading.Event) -> None:
    while not stop.wait(CLAIM_REFRESH):
        with contextlib.suppress(OSError):  # a store away for a while: the next round retries
            output.write_atomic(mine, json.dumps(me).encode())
