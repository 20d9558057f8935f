"""A stop signal that comes while the shard reads its workers' messages waits for the end of
that reading; otherwise it is handled at once."""

from __future__ import annotations

import os
import signal
from types import FrameType

from prs_runner.execution.deferred_stops import DeferredStops


def test_a_signal_is_handled_at_once_outside_a_reading() -> None:
    stops, seen = DeferredStops(), []
    stops.handler(lambda signum, _: seen.append(signum))(signal.SIGTERM, None)
    assert seen == [signal.SIGTERM]


def test_a_signal_during_nested_readings_is_handled_once_when_the_outer_one_ends() -> None:
    stops, seen = DeferredStops(), []
    on_signal = stops.handler(lambda signum, _: seen.append(signum))
    with stops.held():
        with stops.held():
            on_signal(signal.SIGTERM, None)
            on_signal(signal.SIGINT, None)  # a second one: the first is the one handled
        assert seen == []
    assert seen == [signal.SIGTERM]
    with stops.held():
        pass
    assert seen == [signal.SIGTERM]  # handled once


def test_a_real_signal_waits_for_the_reading() -> None:
    stops, seen = DeferredStops(), []

    def handle(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGUSR1, stops.handler(handle))
    try:
        with stops.held():
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(1000):  # Python runs the handler between two steps: here
                pass
            assert seen == []
        assert seen == [signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, previous)
