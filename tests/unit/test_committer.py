"""A worker's commits on a local output: each record is in the commit log when commit()
returns; its 'done' is held while the worker has more to run, and said with the others in
one message, in order with every other message, and never later than HOLD_SECONDS after
the first held one began."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from prs_runner.execution.committer import HOLD_MOST, Committer, Ran
from prs_runner.output.commit_log import CommitLog, read_life
from prs_runner.output.results import SUCCEEDED, ResultHeader
from prs_runner.storage.filesystem import Storage

LIFE = "0000000000000001-0-0-1"
LONG = 3600.0  # a hold no test outlives: only the count and the worker say what is held


def ran(mb_id: int, seconds: float = 0.0) -> Ran:
    header = ResultHeader(id=mb_id, shard=0, process=0, tries=1, items=1, succeeded=1,
                          failed=0, seconds=seconds, status=SUCCEEDED, rows=1, started=1.0)
    return Ran(header, f"row {mb_id}\n".encode(),
               {"done": mb_id, "succeeded": 1, "failed": 0, "rows": 1, "status": SUCCEEDED})


def committer_on(folder: Path, sent: list[dict[str, Any]], hold: float = LONG,
                 queued: list[bool] | None = None) -> Committer:
    """A committer whose worker has its next command already, unless QUEUED (its one
    element) says otherwise."""
    output = Storage(str(folder))
    waiting = [True] if queued is None else queued
    return Committer(CommitLog(output, LIFE), sent.append, lambda: {"requests": 0},
                     lambda: waiting[0], hold)


def said(sent: list[dict[str, Any]]) -> list[int]:
    return [done["done"] for message in sent for done in message.get("done", [])]


def test_a_record_is_committed_at_once_and_its_done_is_held(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []
    committer = committer_on(tmp_path, sent)
    committer.commit(ran(1))
    committer.commit(ran(2))
    assert [c.header.id for c in read_life(Storage(str(tmp_path)), LIFE)] == [1, 2]
    assert sent == []
    committer.idle()  # the worker is about to wait for its next command
    assert sent == [{"done": [ran(1).done, ran(2).done], "requests": 0}]
    committer.idle()
    assert len(sent) == 1  # nothing held: nothing more said
    committer.close()


def test_a_done_is_said_at_once_when_no_command_is_there_yet(tmp_path: Path) -> None:
    """The worker is about to wait: its supervisor must know it can send more."""
    sent: list[dict[str, Any]] = []
    queued = [True]
    committer = committer_on(tmp_path, sent, queued=queued)
    committer.commit(ran(1))
    assert sent == []
    queued[0] = False
    committer.commit(ran(2))
    assert said(sent) == [1, 2]
    committer.commit(ran(3))
    assert said(sent) == [1, 2, 3]
    committer.close()


def test_no_more_than_hold_most_are_held(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []
    committer = committer_on(tmp_path, sent)
    for mb_id in range(HOLD_MOST + 3):
        committer.commit(ran(mb_id))
    assert [len(m["done"]) for m in sent] == [HOLD_MOST]
    committer.close()
    assert said(sent) == list(range(HOLD_MOST + 3))


def test_dones_are_held_only_while_the_first_began_less_than_hold_seconds_ago(
        tmp_path: Path) -> None:
    """The supervisor times the running mini-batch from the last 'done' it got."""
    sent: list[dict[str, Any]] = []
    committer = committer_on(tmp_path, sent, hold=0.2)
    committer.commit(ran(1))
    time.sleep(0.3)
    assert sent == []  # no thread says them: the next commit, or the worker's wait, does
    committer.commit(ran(2))
    assert said(sent) == [1, 2]
    committer.close()


def test_a_done_with_failed_items_is_said_at_once(tmp_path: Path) -> None:
    """The thresholds count failed items as they are said."""
    sent: list[dict[str, Any]] = []
    committer = committer_on(tmp_path, sent)
    committer.commit(ran(1))
    failing = ran(2)
    failing.done.update(succeeded=0, failed=1, item_error={"type": "FewerResults",
                                                           "message": "none"})
    committer.commit(failing)
    assert said(sent) == [1, 2]
    committer.close()


def test_a_local_worker_starts_no_thread(tmp_path: Path) -> None:
    """A script may join every thread it finds: none of the runner's may be waiting."""
    before = set(threading.enumerate())
    committer = committer_on(tmp_path, [])
    committer.commit(ran(1))
    assert set(threading.enumerate()) == before
    committer.close()


def test_a_mini_batch_that_began_hold_seconds_ago_is_said_at_once(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []
    committer = committer_on(tmp_path, sent, hold=60.0)
    committer.commit(ran(1, seconds=61.0))
    assert said(sent) == [1]
    committer.commit(ran(2, seconds=1.0))
    assert said(sent) == [1]
    committer.close()
    assert said(sent) == [1, 2]


def test_a_failed_try_is_said_after_the_dones_before_it(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []
    committer = committer_on(tmp_path, sent)
    committer.commit(ran(1))
    error = {"error": {"type": "ValueError", "message": "no"}, "id": 2}
    committer.tell(error)
    committer.commit(ran(3))
    committer.close()
    assert sent == [{"done": [ran(1).done], "requests": 0}, error,
                    {"done": [ran(3).done], "requests": 0}]


def test_a_commit_that_cannot_be_written_is_said_after_the_held_dones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []
    committer = committer_on(tmp_path, sent)
    committer.commit(ran(1))

    def full_disk(*_: object) -> None:
        raise OSError(28, "No space left on device")

    # A stand-in: the unit tier has no full disk (tests/runner/test_full_disk.py fills one).
    monkeypatch.setattr(CommitLog, "add", full_disk)
    committer.commit(ran(2))
    assert said(sent) == [1]
    assert sent[-1]["id"] == 2 and "No space left on device" in sent[-1]["commit_failed"]
    committer.close()
