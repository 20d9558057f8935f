"""What a shard does about writes to its workers' pipes that no runner made (a script that
opened them, execution.worker): the records such a write made a worker commit, and what a
worker says once it was told to stop, when the shard reads no more of it otherwise.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Container

from prs_runner.execution.worker_messages import (
    decode_events,
    stray_command_error,
    stray_error,
    take_lines,
    unfit_error,
)
from prs_runner.execution.worker_slot import Slot
from prs_runner.output.commit_log import read_life, void
from prs_runner.storage.filesystem import Storage

AFTER_STOP_BYTES = 1 << 20  # read of a stopped worker's pipe: a 'stopped' is 18


def void_unsent(output: Storage, slot: Slot, queued: Container[int]) -> int:
    """SLOT's worker said what no worker says: the records its life committed past those
    the shard was told of, of mini-batches not QUEUED for it, ran on a command the shard
    never sent (a forged one). They do not count (an earlier record of the same mini-batch
    does); how many there were."""
    forged = [commit for commit in read_life(output, slot.life)[slot.told:]
              if commit.header.id not in queued]
    void(output, forged)
    return len(forged)


def said_after_stop(slot: Slot) -> dict[str, str] | None:
    """Once SLOT's worker was sent its stop and has exited: the error of what it said then
    that no worker says (it says only that it stopped, every result was said before; one
    not ready yet says that first), or None. A stray line read where the stop should be is
    said so by the worker itself."""
    data = drain(slot.events)
    lines, stray = take_lines(slot.buffer, data)
    events, stray_line = decode_events(lines)
    stray = stray_line if stray_line is not None else stray
    ready = slot.ready  # one started late says so first (or that its init() failed)
    for event in events:
        if "stray_command" in event:
            return stray_command_error(slot.index, event["stray_command"])
        if not ready and ("ready" in event or "init_failed" in event):
            ready = True
        elif "stopped" not in event:
            return unfit_error(slot.index, event)
    return None if stray is None else stray_error(slot.index, stray)


def drain(fd: int) -> bytes:
    """What is left in the pipe FD, without waiting (whatever the script started may
    still hold its other end), up to AFTER_STOP_BYTES."""
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    size = 0
    with contextlib.suppress(BlockingIOError, OSError):
        while size < AFTER_STOP_BYTES and (chunk := os.read(fd, 1 << 16)):
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks)
