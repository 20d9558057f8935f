"""What a shard reads of a worker after its stop, on a real pipe."""

from __future__ import annotations

import os

import pytest

from prs_runner.execution.stray_writes import drain, said_after_stop
from prs_runner.execution.worker_slot import Slot


def stopped_slot(written: bytes, ready: bool) -> Slot:
    """A slot whose worker wrote WRITTEN and exited (its end of the pipe closed)."""
    read, write = os.pipe()
    os.write(write, written)
    os.close(write)
    return Slot(0, pid=1, events=read, ready=ready)


@pytest.mark.parametrize(("written", "said"), [
    (b"", None),  # killed before it said it stopped: nothing to say
    (b'{"stopped": true}\n', None),
    (b'{"stopped": true}', None),  # its newline never came
    (b"junk\n", "worker process 0 wrote 'junk' to its pipe to the shard"),
    (b'{"stray_command": "\'junk\'"}\n', "worker process 0 read 'junk' from its pipe"),
    (b'{"done": [{"done": 0, "succeeded": 1, "failed": 0, "rows": 1, "status": "succeeded"}],'
     b' "requests": 0}\n{"stopped": true}\n',
     """worker process 0 sent '{"done": [{"done": 0, """),  # all were said before the stop
    (b'{"stopped": true}\njunk', "worker process 0 wrote 'junk'"),
    (b'{"stray_command": "x\\ny"}\n', """worker process 0 wrote '{"stray_command": "x"""),
])
def test_what_a_worker_says_after_its_stop(written: bytes, said: str | None) -> None:
    slot = stopped_slot(written, ready=True)
    try:
        error = said_after_stop(slot)
    finally:
        os.close(slot.events)
    if said is None:
        assert error is None
    else:
        assert error is not None and error["type"] == "WorkerPipeError"
        assert error["message"].startswith(said)


@pytest.mark.parametrize(("written", "ready", "said"), [
    (b'{"ready": true}\n{"stopped": true}\n', False, None),  # started late, ready after all
    (b'{"init_failed": {"type": "T", "message": "m"}, "lasting": false}\n', False, None),
    (b'{"ready": true}\n', True, """worker process 0 sent '{"ready": true}'"""),
    (b'{"ready": true}\n{"ready": true}\n', False, """worker process 0 sent '{"ready": true}'"""),
])
def test_a_worker_started_late_says_it_is_ready_first(written: bytes, ready: bool,
                                                     said: str | None) -> None:
    slot = stopped_slot(written, ready)
    try:
        error = said_after_stop(slot)
    finally:
        os.close(slot.events)
    assert (error["message"][:len(said)] if error and said else error) == said


def test_a_pipe_still_held_open_is_read_without_waiting() -> None:
    """Whatever the script started may hold the pipe's other end after the worker exits."""
    read, write = os.pipe()
    os.write(write, b'{"stopped": true}\n')
    try:
        assert drain(read) == b'{"stopped": true}\n'
        assert drain(read) == b""
    finally:
        os.close(read)
        os.close(write)
