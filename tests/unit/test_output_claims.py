"""Whose claim on an object-store output counts (storage.output_lock), on a local folder
whose files' times can be set: a process of this host counts while it runs, however old
its claim; another host's only while it rewrites it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prs_runner.storage.filesystem import Storage
from prs_runner.storage.output_lock import (
    CLAIM_STALE,
    CLAIMS,
    alive_here,
    live_claim,
    refresh_claim,
)

MINE = f"{CLAIMS}/mine"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def claim(output: Path, name: str, age: float, **holder: object) -> str:
    path = output / CLAIMS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(holder))
    then = time.time() - age
    os.utime(path, (then, then))
    return f"{CLAIMS}/{name}"


def gone_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


HERE = socket.gethostname()


@pytest.mark.parametrize(("age", "holder", "counts"), [
    (0, {"host": "elsewhere", "pid": 1, "started": 0}, True),
    (CLAIM_STALE + 60, {"host": "elsewhere", "pid": 1, "started": 0}, False),  # stopped writing
    (0, {"host": HERE, "pid": "gone", "started": 0}, False),  # killed: no need to wait
    # stopped with Ctrl-Z past CLAIM_STALE: it holds the output still (it was taken over)
    (CLAIM_STALE + 60, {"host": HERE, "pid": "sleeper", "started": "now"}, True),
    # the pid now names a process that started after the claim: the holder is gone
    (0, {"host": HERE, "pid": "sleeper", "started": 1000.0}, False),
    (CLAIM_STALE + 60, {"note": "not a holder"}, False),
    (0, {"note": "not a holder"}, True),
])
def test_whose_claim_counts(tmp_path: Path, sleeper: subprocess.Popen[bytes], age: float,
                            holder: dict[str, object], counts: bool) -> None:
    holder = dict(holder)
    if holder.get("pid") == "sleeper":
        holder["pid"] = sleeper.pid
    if holder.get("pid") == "gone":
        holder["pid"] = gone_pid()
    if holder.get("started") == "now":
        holder["started"] = time.time()
    output = Storage(str(tmp_path))
    claim(tmp_path, "mine", 0, host=HERE, pid=os.getpid(), started=time.time())
    theirs = claim(tmp_path, "theirs", age, **holder)
    found = live_claim(output, MINE)
    assert (found is not None) is counts
    assert (tmp_path / theirs).exists() is counts  # a dead run's claim is removed


def test_the_holder_of_a_claim_here(sleeper: subprocess.Popen[bytes]) -> None:
    def raw(**holder: object) -> bytes:
        return json.dumps(holder).encode()

    assert alive_here(raw(host=HERE, pid=sleeper.pid, started=time.time())) is True
    assert alive_here(raw(host=HERE, pid=gone_pid(), started=time.time())) is False
    assert alive_here(raw(host=HERE, pid=sleeper.pid, started=0)) is False  # a reused pid
    assert alive_here(raw(host="elsewhere", pid=sleeper.pid, started=0)) is None
    assert alive_here(b"{not json") is None


class VanishingClaims(Storage):
    """A store that removes another run's claim between the listing and the read, and then
    says so as SeaweedFS and Azure do: not as 'not found' (a stand-in: the real race is a
    matter of milliseconds)."""

    def read_bytes(self, path: str) -> bytes:
        if path.endswith("/theirs"):
            os.remove(self.join(path))
            raise OSError("When reading information for key: INTERNAL_FAILURE")
        return super().read_bytes(path)


def test_a_claim_that_goes_between_the_listing_and_the_read_is_a_run_that_ended(
        tmp_path: Path) -> None:
    claim(tmp_path, "mine", 0, host=HERE, pid=os.getpid(), started=time.time())
    claim(tmp_path, "theirs", 0, host="elsewhere", pid=1, started=0)
    assert live_claim(VanishingClaims(str(tmp_path)), MINE) is None


class UnreadableClaims(Storage):
    """A store that lists another run's claim but fails to read it (a stand-in, as above)."""

    def read_bytes(self, path: str) -> bytes:
        if path.endswith("/theirs"):
            raise OSError("When reading information for key: INTERNAL_FAILURE")
        return super().read_bytes(path)


def test_a_claim_still_listed_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    claim(tmp_path, "mine", 0, host=HERE, pid=os.getpid(), started=time.time())
    claim(tmp_path, "theirs", 0, host="elsewhere", pid=1, started=0)
    with pytest.raises(OSError, match="INTERNAL_FAILURE"):
        live_claim(UnreadableClaims(str(tmp_path)), MINE)


def test_a_run_whose_claim_another_removed_is_told_and_writes_it_no_more(
        tmp_path: Path) -> None:
    """Another host's run judged this one dead (stopped, or cut off from the store, for
    CLAIM_STALE) and removed its claim: this run hears of it and stops rather than write
    beside the other; its claim is not written again."""
    output = Storage(str(tmp_path))
    mine = claim(tmp_path, "mine", 0, host=HERE, pid=os.getpid(), started=time.time())
    told, stop = threading.Event(), threading.Event()
    refresher = threading.Thread(target=refresh_claim, args=(
        output, mine, {"pid": os.getpid()}, stop, told.set, 0.01))
    refresher.start()
    time.sleep(0.05)
    assert not told.is_set()  # rewritten meanwhile
    assert json.loads((tmp_path / mine).read_text()) == {"pid": os.getpid()}
    (tmp_path / mine).unlink()
    assert told.wait(5)
    refresher.join(5)
    assert not refresher.is_alive() and not (tmp_path / mine).exists()
    stop.set()
