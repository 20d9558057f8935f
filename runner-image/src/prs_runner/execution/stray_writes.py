"""What a shard does about writes to its workers' pipes that no runner made (a script that
opened them, execution.worker): the records such a write made a worker commit, and what a
worker says once it was told to stop, when the shard reads no more of it otherwise.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence

from prs_runner.execution.queue_reconciliation import unsent
from prs_runner.execution.worker_messages import (
    decode_events,
    stray_command_error,
    stray_error,
    take_lines,
    unfit_error,
)
from prs_runner.execution.worker_slot import Slot
from prs_runner.output.commit_index import Commit
from prs_runner.output.commit_log import read_life, void
from prs_runner.storage.filesystem import Storage

AFTER_STOP_BYTES = 1 << 20  # read of a stopped worker's pipe: a 'stopped' is 18


def void_unsent(output: Storage, commits: list[Commit], sent: Sequence[int]) -> list[Commit]:
    """Of COMMITS, a worker life's records in order, those no command the shard SENT it
    accounts for (queue_reconciliation.unsent: its script forged the command they ran
    on). They do not count (the mini-batch's record from its command does); returned."""
    forged = [commits[at] for at in unsent([c.header.id for c in commits], sent)]
    void(output, forged)
    return forged


def check_after_stop(output: Storage, slot: Slot, shard: int) -> dict[str, str] | None:
    """Read what SLOT's worker said as it stopped (said_after_stop); where it said what no
    worker says, the records it committed on commands the shard did not send are voided,
    one line says so on stderr, and the error is returned."""
    error = said_after_stop(slot)
    if error is None:
        return None
    forged = len(void_unsent(output, read_life(output, slot.life), slot.commands_sent))
    print(f"shard {shard}: {error['message']} (after its last mini-batch; {forged} records "
          "of mini-batches the shard did not send do not count)", file=sys.stderr, flush=True)
    return error


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
