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
The holder rewrites its claim every CLAIM_REFRESH seconds. A claim of a process of this host
counts while that process runs, however old (a run stopped with Ctrl-Z holds its output),
and is removed at once when it does not (a killed run, rerun on the same machine). Another
host's claim not rewritten for CLAIM_STALE seconds (by the store's clock, compared with our
own claim's time) belongs to a run that died, and is ignored and removed.
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
from collections.abc import Callable, Iterator

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
def output_lock(output: Storage, on_lost: Callable[[], None] = lambda: None
                ) -> Iterator[None]:
    """Hold the output's lock for the block; OutputInUse at once if another run has it.
    ON_LOST: called once if another run removes this run's claim on an object store (it
    judged this run dead: no refresh for CLAIM_STALE seconds, a host stopped or cut off)."""
    if output.local is None:
        with object_claim(output, on_lost):
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
def object_claim(output: Storage, on_lost: Callable[[], None]) -> Iterator[None]:
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
        refresher = threading.Thread(target=refresh_claim,
                                     args=(output, mine, me, stop, on_lost),
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
    """Another run's live claim (its content), removing dead ones on the way."""
    entries = {f"{CLAIMS}/{e.path}": e for e in Storage(output.uri_of(CLAIMS)).list_files()}
    own = entries.get(mine)
    now_ns = own.mtime_ns if own is not None and own.mtime_ns else time.time_ns()
    for path, entry in sorted(entries.items()):
        if path == mine:
            continue
        try:
            raw = output.read_bytes(path)
        except OSError:
            if gone(output, path):
                continue  # that run just ended: its claim went after the listing
            raise
        alive = alive_here(raw)
        stale = now_ns - entry.mtime_ns > CLAIM_STALE * 1e9
        if alive is False or (alive is None and stale):
            with contextlib.suppress(OSError):
                output.delete(path)  # its run died without removing it
            continue
        return raw
    return None


def gone(output: Storage, path: str) -> bool:
    """Whether the claim PATH is no longer listed (a store may not say 'not found' for an
    object removed between a listing and a read: Azure's BlobNotFound, SeaweedFS's 500)."""
    return path.rsplit("/", 1)[-1] not in output.list_names(CLAIMS)


def alive_here(raw: bytes) -> bool | None:
    """Whether the claim's holder, a process of this host, still runs (a run stopped with
    Ctrl-Z does: it holds the output however long it waits); None for another host's, or
    a claim that does not say. A process that started after the claim was written has only
    reused the holder's pid."""
    try:
        holder = json.loads(raw)
        if holder["host"] != socket.gethostname():
            return None
        pid, claimed = int(holder["pid"]), float(holder["started"])
    except (ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it runs, as another user
    started = process_start(pid)
    return started is None or started <= claimed + 1.0


def process_start(pid: int) -> float | None:
    """When process PID started (Unix seconds), from /proc; None where there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as system:
            boot = next(float(line.split()[1]) for line in system
                        if line.startswith(b"btime "))
    except (OSError, IndexError, StopIteration, ValueError):
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def refresh_claim(output: Storage, mine: str, me: dict[str, object], stop: threading.Event,
                  on_lost: Callable[[], None], every: float = CLAIM_REFRESH) -> None:
    """Rewrite this run's claim EVERY seconds until STOP; ON_LOST once another run has
    removed it (and no more rewrites: a claim written again would hold off a third run
    while two already write)."""
    while not stop.wait(every):
        with contextlib.suppress(OSError):  # a store away for a while: the next round retries
            if gone(output, mine):
                on_lost()
                return
            output.write_atomic(mine, json.dumps(me).encode())
