"""A worker's command queue on an object store: held commits go out only when the worker has
waited a while for its next command, not at every round trip to its supervisor."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator

import pytest

from prs_runner.execution.command_queue import (
    IDLE_GRACE_SECONDS,
    LONGEST_COMMAND,
    CommandQueue,
    command_lines,
)


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    with contextlib.suppress(OSError):
        os.close(write)  # the queue's reader thread sees the end, and ends
    for thread in threading.enumerate():
        if thread.name == "prs-commands":
            thread.join(timeout=10)
    os.close(read)  # only then: a read on a closed descriptor would fail in that thread


def send_later(fd: int, command: dict[str, int], delay: float) -> threading.Thread:
    def send() -> None:
        time.sleep(delay)
        os.write(fd, (json.dumps(command) + "\n").encode())
    thread = threading.Thread(target=send)
    thread.start()
    return thread


def queue_on(read_fd: int, idle: list[float], grace: float) -> CommandQueue:
    stream = os.fdopen(read_fd, "rb", buffering=0, closefd=False)
    return CommandQueue(stream, None, threaded=True,
                        on_idle=lambda: idle.append(time.monotonic()), idle_grace=grace)


def test_a_command_within_the_grace_does_not_make_the_worker_idle(
        pipe: tuple[int, int]) -> None:
    idle: list[float] = []
    queue = queue_on(pipe[0], idle, grace=10.0)
    sender = send_later(pipe[1], {"run": 1, "try": 1}, 0.2)
    assert queue.next() == {"run": 1, "try": 1}
    sender.join()
    assert idle == []


def test_a_worker_left_waiting_past_the_grace_writes_what_it_holds(
        pipe: tuple[int, int]) -> None:
    idle: list[float] = []
    queue = queue_on(pipe[0], idle, grace=0.05)
    started = time.monotonic()
    sender = send_later(pipe[1], {"run": 2, "try": 1}, 1.0)
    assert queue.next() == {"run": 2, "try": 1}
    sender.join()
    assert len(idle) == 1 and idle[0] - started >= 0.05
    assert idle[0] < started + 1.0  # before the command came, not after


def test_a_queued_command_is_taken_at_once(pipe: tuple[int, int]) -> None:
    idle: list[float] = []
    queue = queue_on(pipe[0], idle, grace=10.0)
    os.write(pipe[1], b'{"run": 3, "try": 1}\n{"run": 4, "try": 1}\n')
    started = time.monotonic()
    assert [queue.next(), queue.next()] == [{"run": 3, "try": 1}, {"run": 4, "try": 1}]
    assert time.monotonic() - started < 5.0 and idle == []


def test_the_end_of_the_commands_is_none_after_the_grace(pipe: tuple[int, int]) -> None:
    idle: list[float] = []
    queue = queue_on(pipe[0], idle, grace=0.01)
    os.close(pipe[1])
    assert queue.next() is None


def test_the_grace_is_short_beside_a_flush() -> None:
    """A round trip to the supervisor is about a millisecond; a part is written at least
    every second. The grace sits between, so it neither splits parts at every round trip
    nor delays a shard's end noticeably."""
    from prs_runner.execution.committer import FLUSH_SECONDS
    assert 0.005 <= IDLE_GRACE_SECONDS <= FLUSH_SECONDS / 10


def unthreaded_queue(read_fd: int, idle: list[float]) -> CommandQueue:
    stream = os.fdopen(read_fd, "rb", closefd=False)
    return CommandQueue(stream, None, threaded=False,
                        on_idle=lambda: idle.append(time.monotonic()))


def test_a_local_worker_says_it_is_idle_only_when_it_is_about_to_wait(
        pipe: tuple[int, int]) -> None:
    """Locally the held 'done's go out when no command is waiting (committer.HOLD_MOST)."""
    idle: list[float] = []
    queue = unthreaded_queue(pipe[0], idle)
    os.write(pipe[1], b'{"run":1,"try":1}\n{"run":2,"try":1}\n{"run":3,"try":2}\n')
    assert [queue.next() for _ in range(3)] == [
        {"run": 1, "try": 1}, {"run": 2, "try": 1}, {"run": 3, "try": 2}]
    assert len(idle) == 1  # before the first read only: the next two were there already
    os.write(pipe[1], b'{"stop": true}\n')
    assert queue.next() == {"stop": True}
    assert len(idle) == 2


def test_a_command_split_across_reads_is_one_command(pipe: tuple[int, int]) -> None:
    idle: list[float] = []
    queue = unthreaded_queue(pipe[0], idle)
    os.write(pipe[1], b'{"run":41,"tr')

    def rest() -> None:
        time.sleep(0.2)
        os.write(pipe[1], b'y":1}\n')

    sender = threading.Thread(target=rest)
    sender.start()
    assert queue.next() == {"run": 41, "try": 1}
    sender.join()


def test_the_end_of_a_local_worker_s_commands_is_none(pipe: tuple[int, int]) -> None:
    idle: list[float] = []
    queue = unthreaded_queue(pipe[0], idle)
    os.write(pipe[1], b'\n{"run":5,"try":1}\n{"run":6,"try":1}')  # no newline at the end
    os.close(pipe[1])
    assert [queue.next(), queue.next(), queue.next()] == [
        {"run": 5, "try": 1}, {"run": 6, "try": 1}, None]


def test_a_queue_says_whether_its_next_command_is_there(pipe: tuple[int, int]) -> None:
    idle: list[float] = []
    queue = unthreaded_queue(pipe[0], idle)
    assert not queue.has_next()
    os.write(pipe[1], b'{"run":1,"try":1}\n{"run":2,"try":1}\n')
    assert queue.next() == {"run": 1, "try": 1}
    assert queue.has_next()
    assert queue.next() == {"run": 2, "try": 1}
    assert not queue.has_next()


def test_a_threaded_queue_says_whether_its_next_command_is_there(
        pipe: tuple[int, int]) -> None:
    idle: list[float] = []
    queue = queue_on(pipe[0], idle, grace=10.0)
    os.write(pipe[1], b'{"run":1,"try":1}\n{"run":2,"try":1}\n')
    assert queue.next() == {"run": 1, "try": 1}
    deadline = time.monotonic() + 10
    while not queue.has_next() and time.monotonic() < deadline:
        time.sleep(0.01)  # the reader thread takes the second line off the pipe
    assert queue.has_next()
    assert queue.next() == {"run": 2, "try": 1}
    assert not queue.has_next()


@pytest.mark.parametrize(("before", "chunk", "lines", "after"), [
    (b"", b'{"run":1,"try":1}\n', [b'{"run":1,"try":1}'], b""),
    (b"", b'{"run":1,"try":1}\n{"run":2,"try":1}\n',
     [b'{"run":1,"try":1}', b'{"run":2,"try":1}'], b""),
    (b"", b"\n\n", [], b""),  # empty lines are no commands
    (b"", b'{"run":1', [], b'{"run":1'),
    (b'{"run":1', b',"try":1}\n{"ru', [b'{"run":1,"try":1}'], b'{"ru'),
    (b"", b"x" * LONGEST_COMMAND, [], b"x" * LONGEST_COMMAND),
    (b"", b"x" * (LONGEST_COMMAND + 1), [b"x" * (LONGEST_COMMAND + 1)], b""),  # taken now
    (b"x" * LONGEST_COMMAND, b"y", [b"x" * LONGEST_COMMAND + b"y"], b""),
    (b"", b"a\n" + b"x" * (LONGEST_COMMAND + 1), [b"a", b"x" * (LONGEST_COMMAND + 1)], b""),
])
def test_command_lines_are_whole_lines_and_a_line_longer_than_any_command_is_taken_at_once(
        before: bytes, chunk: bytes, lines: list[bytes], after: bytes) -> None:
    buffer = bytearray(before)
    assert command_lines(buffer, chunk) == lines
    assert buffer == after
