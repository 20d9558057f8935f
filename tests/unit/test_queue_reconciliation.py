"""What a worker's commit log says about the queue its supervisor sent it: read early while
it runs (its 'done's are held), or after it died (which were finished, which go back, which
try failed)."""

from __future__ import annotations

from typing import Any

import pytest

from prs_runner.execution.queue_reconciliation import (
    LostQueue,
    ended_at,
    fits,
    read_ahead,
    settle_lost,
    unsent,
)
from prs_runner.output.results import SUCCEEDED, ResultHeader


def header(mb_id: int, started: float | None = 100.0, seconds: float = 1.0) -> ResultHeader:
    return ResultHeader(id=mb_id, shard=0, process=0, tries=1, items=1, succeeded=1,
                        failed=0, seconds=seconds, status=SUCCEEDED, rows=1, started=started)


@pytest.mark.parametrize(("started", "seconds", "ended"), [
    (100.0, 2.5, 102.5),
    (100.0, 0.0, 100.0),
    (None, 2.5, 0.0),  # recorded before starts were: unknown, not "at 2.5"
])
def test_a_commit_ended_at_its_start_plus_its_seconds(
        started: float | None, seconds: float, ended: float) -> None:
    assert ended_at(header(1, started, seconds)) == ended


@pytest.mark.parametrize(("queue", "committed", "ahead"), [
    ([], [], []),
    ([4, 5, 6], [], []),
    ([4, 5, 6], [4], [4]),
    ([4, 5, 6], [4, 5], [4, 5]),
    ([4, 5, 6], [4, 5, 6], [4, 5, 6]),
    ([4, 5], [4, 5, 6], [4, 5]),  # more than it was sent: the queue is the limit
    ([4, 5, 6], [5], []),  # not the head: its 'done' will say
    ([4, 5, 6], [4, 6], [4]),  # a gap ends the run
    ([4, 5, 6], [4, 4], [4]),  # a second record of the head is not the next one
], ids=["nothing", "nothing committed", "the head", "two", "all", "past the queue",
        "not the head", "a gap", "the head twice"])
def test_read_ahead_takes_the_commits_that_finish_the_head_of_the_queue(
        queue: list[int], committed: list[int], ahead: list[int]) -> None:
    assert [h.id for h in read_ahead(queue, [header(i) for i in committed])] == ahead


def test_read_ahead_keeps_the_records_themselves() -> None:
    records = [header(4, 10.0, 1.0), header(5, 12.0, 3.0)]
    assert read_ahead([4, 5], records) == records


@pytest.mark.parametrize(("queue", "ran", "committed", "done", "back", "running"), [
    ([], set(), {}, [], [], None),
    ([7], set(), {}, [], [], 7),  # died in its first
    ([7, 8, 9], set(), {}, [], [8, 9], 7),
    ([7, 8, 9], set(), {7}, [7], [9], 8),
    ([7, 8, 9], set(), {7, 8, 9}, [7, 8, 9], [], None),  # died after its last commit
    ([7, 8, 9], {7}, {}, [], [7, 9], 8),  # 7 ran to the end, not committed: again
    ([7, 8, 9], {7, 8}, {}, [], [7, 8], 9),
    ([7, 8, 9], {7, 8, 9}, {}, [], [7, 8, 9], None),
    ([7, 8, 9], {7}, {8}, [8], [7], 9),  # committed out of order (object stores)
    ([7, 8, 9], set(), {9}, [9], [8], 7),  # a later one committed: done all the same
    ([7, 8, 9], {9}, {}, [], [8, 9], 7),  # after the one it was in, all go back
], ids=["nothing sent", "in its first", "in its first of three", "in its second",
        "all committed", "one ran uncommitted", "two ran", "all ran", "out of order",
        "a later one committed", "ran after the running one"])
def test_a_dead_workers_queue_is_settled_by_its_log(
        queue: list[int], ran: set[int], committed: set[int], done: list[int],
        back: list[int], running: int | None) -> None:
    lost = settle_lost(queue, ran, {i: header(i) for i in committed})
    assert ([h.id for h in lost.done], lost.back, lost.running) == (done, back, running)


def test_the_running_try_began_when_the_last_commit_before_it_ended() -> None:
    committed = {1: header(1, 100.0, 2.0), 2: header(2, 103.0, 1.0), 4: header(4, 200.0, 5.0)}
    # 4 was committed after the one running (3): it says nothing of when 3 began
    assert settle_lost([1, 2, 3, 4], set(), committed) == LostQueue(
        [committed[1], committed[2], committed[4]], [], 3, 104.0)


@pytest.mark.parametrize(("ends", "since"), [
    ([(100.0, 5.0), (103.0, 1.0)], 105.0),  # the latest end, not the last one's
    ([(None, 1.0)], 0.0),  # no start recorded: unknown
    ([(None, 1.0), (50.0, 1.0)], 51.0),
    ([], 0.0),
])
def test_the_running_try_began_at_the_latest_known_end(
        ends: list[tuple[float | None, float]], since: float) -> None:
    committed = {i: header(i, start, seconds) for i, (start, seconds) in enumerate(ends)}
    lost = settle_lost([*committed, 99], set(), committed)
    assert (lost.running, lost.running_since) == (99, since)


def test_with_none_running_the_commits_still_say_when_the_last_ended() -> None:
    committed = {1: header(1, 100.0, 2.0)}
    assert settle_lost([1], set(), committed).running_since == 102.0


def done(*ids: int) -> dict[str, Any]:
    return {"done": [{"done": i, "succeeded": 1, "failed": 0, "rows": 1,
                      "status": "succeeded"} for i in ids], "requests": 0}


ERROR = {"type": "T", "message": "m"}


@pytest.mark.parametrize(("event", "queue", "ready", "early", "fit"), [
    ({"ready": True}, [], False, set(), True),
    ({"ready": True}, [], True, set(), False),  # twice
    ({"init_failed": ERROR, "lasting": False}, [], False, set(), True),
    ({"init_failed": ERROR, "lasting": False}, [1], True, set(), False),  # mid-run
    (done(1), [1, 2], False, set(), False),  # before it is ready
    (done(1), [1, 2], True, set(), True),
    (done(1, 2), [1, 2], True, set(), True),
    (done(), [1], True, set(), True),
    (done(2), [1, 2], True, set(), False),  # not the head
    (done(1, 2, 3), [1, 2], True, set(), False),  # more than it was sent
    (done(5), [], True, set(), False),
    (done(1, 2), [2], True, {1}, True),  # 1 was read early
    (done(1), [2], True, {1}, True),
    (done(1, 3), [2, 3], True, {1}, False),
    ({"ran": 2}, [1, 2], True, set(), True),
    ({"ran": 2}, [1, 2, 2], True, set(), True),  # sent twice (taken from another's tail)
    ({"ran": 3}, [1, 2], True, set(), False),
    ({"ran": 1}, [1], False, set(), False),
    ({"error": ERROR, "id": 1, "seconds": 1.0}, [1, 2], True, set(), True),
    ({"error": ERROR, "id": 2, "seconds": 1.0}, [1, 2], True, set(), False),
    ({"error": ERROR, "id": 1, "seconds": 1.0}, [], True, set(), False),
    ({"error": ERROR, "id": 1, "seconds": 1.0}, [1], False, set(), False),
    ({"commit_failed": "x", "id": 2}, [1, 2], True, set(), True),
    ({"commit_failed": "x", "id": 1}, [], True, set(), False),
    ({"commit_failed": "x", "id": 1}, [1], False, set(), False),
])
def test_only_messages_that_fit_the_workers_queue_are_acted_on(
        event: dict[str, Any], queue: list[int], ready: bool, early: set[int],
        fit: bool) -> None:
    assert fits(event, queue, ready, early, grouped=True) is fit
    if "ran" not in event:
        assert fits(event, queue, ready, early, grouped=False) is fit


def test_ran_fits_only_where_commits_are_grouped() -> None:
    """On a local output a worker commits before it says anything: it never says 'ran'."""
    assert fits({"ran": 1}, [1], True, set(), grouped=True)
    assert not fits({"ran": 1}, [1], True, set(), grouped=False)


@pytest.mark.parametrize(("ids", "sent", "forged"), [
    ([], [], []),
    ([0, 1, 2], [0, 1, 2], []),
    ([0, 2], [0, 1, 2], []),  # 1 failed (its failure is the shard's record)
    ([1, 2], [1, 1, 2], []),  # a try of 1 failed, the next one committed
    ([0, 1, 0], [0, 1], [2]),  # 0 again: no command sent it twice
    ([0, 5, 1], [0, 1], [1]),  # never sent
    ([0, 2, 1, 2], [0, 1, 2], [3]),  # 2 ran early on a forged command: the later one is not
    ([7], [], [0]),  # before any command (init() forged it)
    ([3, 3], [3, 4, 3], []),  # sent twice, run twice
    ([3, 3, 3], [3, 4, 3], [2]),
])
def test_records_no_command_accounts_for_ran_on_a_forged_one(
        ids: list[int], sent: list[int], forged: list[int]) -> None:
    assert unsent(ids, sent) == forged
