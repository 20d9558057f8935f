"""The lines a shard supervisor and its workers exchange over their pipes: commands to a
worker, events back. Each is one JSON object per line. Pure.

A mini-batch costs one command and one event, so their usual shapes are written and read
without json's per-call cost (a few microseconds each way, in the processes that bound a
run of small mini-batches); any other shape goes through json.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

RUN_PREFIX = b'{"run":'
TRY_SEPARATOR = b',"try":'
DONE_KEYS = frozenset({"done", "requests"})
DONE_ENTRY_KEYS = frozenset({"done", "succeeded", "failed", "rows", "status"})
DONE_ENTRY = '{"done":%d,"succeeded":%d,"failed":%d,"rows":%d,"status":"%s"}'
PLAIN_STATUSES = frozenset({"succeeded", "failed"})
DONE_ENTRY_ALL_KEYS = DONE_ENTRY_KEYS | {"item_error"}
RAN_KEYS, READY_KEYS = frozenset({"ran"}), frozenset({"ready"})
STRAY_COMMAND_KEYS, STOPPED_KEYS = frozenset({"stray_command"}), frozenset({"stopped"})
RUN_KEYS, STOP_KEYS = frozenset({"run", "try"}), frozenset({"stop"})
ERROR_KEYS = frozenset({"error", "id", "seconds"})
INIT_FAILED_KEYS = frozenset({"init_failed", "lasting"})
COMMIT_FAILED_KEYS = frozenset({"commit_failed", "id"})
ERROR_FIELDS = frozenset({"type", "message"})
ERROR_ALL_FIELDS = ERROR_FIELDS | {"traceback"}
OPEN_BRACE = ord("{")  # every message starts with it
STRAY_BYTES = 80  # of a stray line on a worker's pipe, in the error
# shown(): the repr of STRAY_BYTES characters (each at most 10: '\\U0001f600'), and the size
SHOWN_MAX = 10 * STRAY_BYTES + 40


def encode_command(mb_id: int, tries: int) -> bytes:
    return b'{"run":%d,"try":%d}\n' % (mb_id, tries)


def decode_command(line: bytes) -> dict[str, Any]:
    """A command line (its newline or not): {"run": id, "try": n} (read directly in the
    shard's own spelling) or {"stop": true}; anything else was written by the worker's
    script (through /proc/self/fd: the read end opened for writing) and reads as
    {"stray": LINE shown short}."""
    body = line[:-1] if line.endswith(b"\n") else line
    if body.startswith(RUN_PREFIX) and body.endswith(b"}"):
        # rpartition would agree: a second separator leaves no digits on either side
        fields = body[len(RUN_PREFIX):-1]
        mb_id, sep, tries = fields.partition(TRY_SEPARATOR)  # pragma: no mutate: the same
        if sep and mb_id.isdigit() and tries.isdigit() and int(tries) >= 1:
            return {"run": int(mb_id), "try": int(tries)}
    try:
        value = json.loads(body)
    except ValueError:
        value = None  # pragma: no mutate: any value but a command is the same
    return value if runner_command(value) else {"stray": shown(body)}


def runner_command(value: Any) -> bool:
    """Whether VALUE has the shape of a command a shard sends (execution.shard)."""
    if type(value) is not dict:
        return False
    if value.keys() == STOP_KEYS:
        return value["stop"] is True
    return (value.keys() == RUN_KEYS and type(value["run"]) is int and value["run"] >= 0
            and type(value["try"]) is int and value["try"] >= 1)


def encode_event(message: dict[str, Any]) -> bytes:
    """MESSAGE as one line of JSON, a 'done' of plain records (ints a worker counted, one
    of two statuses) without json.dumps."""
    if message.keys() == DONE_KEYS and plain_done(message["done"]) and (
            type(message["requests"]) is int):
        entries = ",".join([DONE_ENTRY % (entry["done"], entry["succeeded"], entry["failed"],
                                          entry["rows"], entry["status"])
                            for entry in message["done"]])
        return f'{{"done":[{entries}],"requests":{message["requests"]}}}\n'.encode()
    return json.dumps(message).encode() + b"\n"


def plain_done(entries: Any) -> bool:
    return type(entries) is list and all(
        type(entry) is dict and entry.keys() == DONE_ENTRY_KEYS
        and entry["status"] in PLAIN_STATUSES
        and all(type(entry[key]) is int for key in ("done", "succeeded", "failed", "rows"))
        for entry in entries)


def take_lines(buffer: bytearray, chunk: bytes
               ) -> tuple[Sequence[bytes | bytearray], bytes | None]:
    """Add CHUNK (a read of a worker's pipe) to BUFFER (what was left of the last) and take
    its whole lines out of it; and what is left if it cannot start a message (every one
    starts with '{'): stray now, whatever follows. A long line is not split again at each
    read, and BUFFER grows in place."""
    # The usual read: whole lines, nothing left (the path below gives the same, slower)
    if not buffer and chunk.endswith(b"\n"):  # pragma: no mutate: the same
        whole = chunk.split(b"\n")
        whole.pop()
        return whole, None
    buffer += chunk
    if b"\n" not in chunk and buffer[:1] == b"{":  # pragma: no mutate: the same, slower
        return [], None
    *lines, rest = buffer.split(b"\n")
    buffer[:] = rest
    return lines, None if not rest or rest[0] == OPEN_BRACE else bytes(rest)


def decode_events(lines: Sequence[bytes | bytearray]
                  ) -> tuple[list[dict[str, Any]], bytes | None]:
    """The events of LINES, in order, and the first line that is not a runner message, or
    None. Parsed in one call when they all are; else line by line, so that those before the
    first that is not are still handled. Anything else on a worker's pipe was written by its
    script (to a descriptor it did not open)."""
    try:
        values = json.loads(b"[%s]" % b",".join(lines))
    except ValueError:
        values = None  # pragma: no mutate: any value but a list is the same
    if (isinstance(values, list) and len(values) == len(lines)
            and all(map(runner_event, values))):
        return values, None
    events: list[dict[str, Any]] = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            return events, bytes(line)
        if not runner_event(value):
            return events, bytes(line)
        events.append(value)
    return events, None


def runner_event(value: Any) -> bool:
    """Whether VALUE has the shape of a message a worker sends (execution.worker)."""
    if type(value) is not dict:
        return False
    keys = value.keys()
    if keys == DONE_KEYS:
        return type(value["requests"]) is int and type(value["done"]) is list and all(
            map(done_entry, value["done"]))
    if keys == RAN_KEYS:
        return type(value["ran"]) is int
    if keys == READY_KEYS:
        return value["ready"] is True
    if keys == ERROR_KEYS:
        return (error_shape(value["error"]) and type(value["id"]) is int
                and type(value["seconds"]) in (int, float))
    if keys == INIT_FAILED_KEYS:
        return error_shape(value["init_failed"]) and type(value["lasting"]) is bool
    if keys == COMMIT_FAILED_KEYS:
        return type(value["commit_failed"]) is str and type(value["id"]) is int
    if keys == STRAY_COMMAND_KEYS:  # as shown() writes it: one short line
        text = value["stray_command"]
        return type(text) is str and len(text) <= SHOWN_MAX and text.isprintable()
    if keys == STOPPED_KEYS:
        return value["stopped"] is True
    return False


def done_entry(entry: Any) -> bool:
    if type(entry) is not dict:
        return False
    keys = entry.keys()
    if keys != DONE_ENTRY_KEYS and not (keys == DONE_ENTRY_ALL_KEYS
                                        and error_shape(entry["item_error"])):
        return False
    # One by one: a generator over the four would double the cost of a 'done' (every one)
    return (type(entry["done"]) is int and type(entry["succeeded"]) is int
            and type(entry["failed"]) is int and type(entry["rows"]) is int
            and type(entry["status"]) is str)


def error_shape(error: Any) -> bool:
    """An error as the worker says it: type and message (and traceback) as text."""
    return (type(error) is dict and ERROR_FIELDS <= error.keys() <= ERROR_ALL_FIELDS
            and all(type(text) is str for text in error.values()))


def shown(line: bytes) -> str:
    """LINE, a stray one, short enough for an error message: its start, and its size."""
    text = line[:STRAY_BYTES].decode("utf-8", "replace")  # pragma: no mutate: UTF-8 too
    more = f"... ({len(line):,} bytes)" if len(line) > STRAY_BYTES else ""
    return f"{text!r}{more}"


def stray_error(process: int, line: bytes) -> dict[str, str]:
    """The error of worker PROCESS whose pipe carried LINE, not a runner message."""
    return pipe_error(f"worker process {process} wrote {shown(line)} to its pipe to the "
                      "shard, not a runner message: its script wrote to a file descriptor it "
                      "did not open")


def unfit_error(process: int, event: dict[str, Any]) -> dict[str, str]:
    """The error of worker PROCESS that sent EVENT, a runner message that does not fit what
    it was sent (queue_reconciliation.fits)."""
    line = json.dumps(event).encode()
    return pipe_error(f"worker process {process} sent {shown(line)} to the shard, a runner "
                      "message that does not fit the commands it was sent: its script wrote to "
                      "one of its pipes")


def stray_command_error(process: int, command: str) -> dict[str, str]:
    """The error of worker PROCESS that read COMMAND (shown short) from the shard's pipe, no
    command the shard sends (or one for no mini-batch of the plan, or a stop the shard did
    not send: it sends them once it reads no more)."""
    return pipe_error(f"worker process {process} read {command} from its pipe from the shard, "
                      "not a command the shard sent: its script wrote to one of its pipes")


def pipe_error(message: str) -> dict[str, str]:
    return {"type": "WorkerPipeError", "message": message}
