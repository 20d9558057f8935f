"""A worker's queue depth follows its pace; commands go out in bulk."""

from __future__ import annotations

from collections import deque

import pytest

from prs_runner.execution.worker_slot import (
    DEEPEST,
    FIRST_DEPTH,
    PACE_WEIGHT,
    QUEUED_SECONDS,
    SHALLOWEST,
    Slot,
    fair_share,
)


def slot(queued: int = 0, ran: int = 0, depth: int = FIRST_DEPTH, ready: bool = True) -> Slot:
    return Slot(0, queue=deque(range(queued)), ran=set(range(ran)), depth=depth, ready=ready)


@pytest.mark.parametrize(("queued", "ran", "depth", "ready", "wants"), [
    (0, 0, FIRST_DEPTH, True, FIRST_DEPTH),
    (0, 0, FIRST_DEPTH, False, 0),  # not ready: nothing yet
    (2, 0, 4, True, 2),  # at half: fill up
    (3, 0, 4, True, 0),  # more than half: wait
    (3, 2, 4, True, 3),  # those that ran only wait for their commit
    (32, 0, 64, True, 32),
    (33, 0, 64, True, 0),
    (1, 0, 2, True, 1),
    (2, 0, 2, True, 0),
])
def test_wants(queued: int, ran: int, depth: int, ready: bool, wants: int) -> None:
    assert slot(queued, ran, depth, ready).wants() == wants


def test_the_depth_follows_the_pace_growing_at_most_twofold_at_a_time() -> None:
    fast = slot(depth=1)
    depths = []
    for finish in range(1, 8):
        fast.finished(10, 0.001 * 10 * finish)  # 1 ms each
        depths.append(fast.depth)
    assert fast.pace == pytest.approx(0.001)
    assert depths[:6] == [2, 4, 8, 16, 32, 50] == [*depths[:5], int(QUEUED_SECONDS / 0.001)]
    assert depths[6] == int(QUEUED_SECONDS / fast.pace)  # 50 ms of work at its pace
    faster = slot(depth=40)
    faster.finished(100, 0.001)
    assert faster.depth == DEEPEST
    slow = slot(depth=40)
    slow.finished(1, 0.2)
    assert slow.depth == SHALLOWEST  # down at once


def test_the_pace_is_a_moving_average_measured_from_the_last_finish() -> None:
    worker = slot()
    worker.finished(1, 1.0)
    worker.finished(2, 1.5)  # 0.25 s each since the last
    assert worker.pace == pytest.approx((1 - PACE_WEIGHT) * 1.0 + PACE_WEIGHT * 0.25)
    assert worker.last_done == 1.5
    worker.finished(0, 9.0)  # nothing finished: nothing changes
    assert worker.last_done == 1.5


def test_an_idle_worker_is_timed_from_when_it_gets_work() -> None:
    worker = slot()
    worker.sent(5.0)
    assert worker.last_done == 5.0
    worker.queue.append(1)
    worker.sent(6.0)  # it was busy: its pace runs on
    assert worker.last_done == 5.0
    worker.ran.add(1)
    worker.sent(7.0)  # all it holds has run
    assert worker.last_done == 7.0
    worker.finished(1, 7.5)
    assert worker.pace == pytest.approx(0.5)


@pytest.mark.parametrize(("queued", "ran", "ready", "running"), [
    (0, 0, True, False), (1, 0, True, True), (1, 1, True, False), (2, 1, True, True),
    (1, 0, False, False),
])
def test_running(queued: int, ran: int, ready: bool, running: bool) -> None:
    assert slot(queued, ran, ready=ready).running() is running


def test_new_work_forgets_the_pace() -> None:
    worker = slot(depth=DEEPEST)
    worker.finished(1000, 0.1)
    assert worker.depth == DEEPEST
    worker.new_work()
    assert (worker.pace, worker.depth) == (0.0, SHALLOWEST)
    worker.finished(1, 0.2)  # measured again from the next one
    assert worker.pace == pytest.approx(0.1)


def test_after_new_work_the_old_work_still_queued_does_not_set_the_pace() -> None:
    worker = slot(queued=3)
    worker.finished(1000, 0.1)
    worker.new_work()
    assert worker.settling == 3
    worker.finished(2, 0.1001)  # fast ones of the old kind
    assert (worker.depth, worker.pace, worker.settling) == (SHALLOWEST, 0.0, 1)
    worker.finished(1, 0.1002)
    assert worker.settling == 0 and worker.last_done == 0.1002
    worker.finished(1, 0.3002)  # the first of the new kind
    assert worker.pace == pytest.approx(0.2) and worker.depth == SHALLOWEST


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"dead": True}, "gave up after init() failed"),
        ({}, "in init()"),
        ({"ready": True}, "idle"),
        ({"ready": True, "queue": [4, 5], "ran": {4}, "head_started": 90.0},
         "in run() of mini-batch 5 for 10 s"),
        ({"ready": True, "queue": [6, 7], "head_started": 98.6},
         "in run() of mini-batch 6 for 1 s"),
        ({"ready": True, "queue": [4], "ran": {4}}, "idle"),  # ran, its commit not yet written
    ],
)
def test_what_a_worker_is_doing(state: dict[str, object], expected: str) -> None:
    slot = Slot(0)
    for name, value in state.items():
        setattr(slot, name, deque(value) if name == "queue" else value)  # type: ignore[call-overload]
    assert slot.doing(100.0) == expected


def done(*ids: int) -> list[dict[str, object]]:
    return [{"done": mb_id} for mb_id in ids]


@pytest.mark.parametrize(("queued", "ran", "early", "said", "fresh", "left", "unsaid"), [
    ([1, 2, 3], set(), set(), [1, 2], [1, 2], [3], 2),
    # Said 'ran' before (an object store): finished then, not now.
    ([1, 2, 3], {1}, set(), [1, 2], [1, 2], [3], 1),
    ([1, 2], {1, 2}, set(), [1, 2], [1, 2], [], 0),
    # Read in its log already (catch_up): off the queue then, not counted again.
    ([3], set(), {1, 2}, [1, 2, 3], [3], [], 1),
    ([2, 3], set(), {1}, [1, 2], [2], [3], 1),
    ([1, 2], set(), set(), [], [], [1, 2], 0),
])
def test_said_done(queued: list[int], ran: set[int], early: set[int], said: list[int],
                   fresh: list[int], left: list[int], unsaid: int) -> None:
    one = Slot(0, queue=deque(queued), ran=set(ran), read_early=set(early), ready=True,
               head_started=1.0, told=5)
    one.sent(0.0)
    got = one.said_done(done(*said), 2.0)
    assert [event["done"] for event in got] == fresh
    assert list(one.queue) == left
    assert one.read_early == set()  # each early one is said once, then forgotten
    assert one.ran == ran - set(fresh)
    assert one.told == 5 + len(fresh)
    assert one.head_started == (2.0 if unsaid else 1.0)
    assert one.pace == (2.0 / unsaid if unsaid else 0.0)


def test_said_ran_times_the_next_from_now() -> None:
    one = Slot(0, queue=deque([4, 5]), ready=True, head_started=1.0, last_done=1.0)
    one.said_ran(4, 3.0)
    assert one.ran == {4}
    assert list(one.queue) == [4, 5]  # off the queue once its commit is said
    assert one.head_started == 3.0
    assert one.pace == 2.0 and one.last_done == 3.0


def test_read_in_log() -> None:
    one = Slot(0, queue=deque([4, 5]), told=2)
    one.read_in_log(4)
    assert list(one.queue) == [5]
    assert one.told == 3
    assert one.read_early == {4}


@pytest.mark.parametrize(("pending", "workers", "share"), [
    (8, 4, 2), (9, 4, 3), (3, 4, 1), (0, 4, 0), (20_000, 2, 10_000), (5, 1, 5),
    (5, 0, 5),  # every worker gone: whoever asks may take it all
])
def test_fair_share(pending: int, workers: int, share: int) -> None:
    assert fair_share(pending, workers) == share
