"""The lines a shard supervisor and its workers exchange over their pipes: commands to a
worker, events back. Each is one JSON object per line. Pure.

A mini-batch costs one command and one event, so their usual shapes are written and read
without json's per-call cost (a few microseconds each way, in the processes that bound a
run of small mini-batches); any other shape goes through json.
"""

from __future__ import annotations

import json
from typing import Any

RUN_PREFIX = b'{"run":'
TRY_SEPARATOR = b',"try":'
DONE_KEYS = frozenset({"done", "requests"})
DONE_ENTRY_KEYS = frozenset({"done", "succeeded", "failed", "rows", "status"})
DONE_ENTRY = '{"done":%d,"succeeded":%d,"failed":%d,"rows":%d,"status":"%s"}'
PLAIN_STATUSES = frozenset({"succeeded", "failed"})
STRAY_BYTES = 80  # of a stray line on a worker's pipe, in the error


def encode_command(mb_id: int, tries: int) -> bytes:
    return b'{"run":%d,"try":%d}\n' % (mb_id, tries)


def decode_command(line: bytes) -> dict[str, Any]:
    """A command line (its newline or not) as json.loads reads it; a run command read
    directly."""
    body = line[:-1] if line.endswith(b"\n") else line
    if body.startswith(RUN_PREFIX) and body.endswith(b"}"):
        # rpartition would agree: a second separator leaves no digits on either side
        fields = body[len(RUN_PREFIX):-1]
        mb_id, sep, tries = fields.partition(TRY_SEPARATOR)  # pragma: no mutate: the same
        if sep and mb_id.isdigit() and tries.isdigit():
            return {"run": int(mb_id), "try": int(tries)}
    return json.loads(line)  # type: ignore[no-any-return]


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


def decode_events(lines: list[bytes]) -> tuple[list[dict[str, Any]], bytes | None]:
    """The events of LINES, in order, and the first line that is not one (a JSON object), or
    None. Parsed in one call when they all are; else line by line, so that those before the
    first that is not are still handled. A worker only writes objects: anything else on its
    pipe was written by its script (to a descriptor it did not open)."""
    try:
        values = json.loads(b"[%s]" % b",".join(lines))
    except ValueError:
        values = None  # pragma: no mutate: any value but a list is the same
    if (isinstance(values, list) and len(values) == len(lines)
            and all(type(value) is dict for value in values)):
        return values, None
    events: list[dict[str, Any]] = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            return events, line
        if type(value) is not dict:
            return events, line
        events.append(value)
    return events, None


def stray_error(process: int, line: bytes) -> dict[str, str]:
    """The error of worker PROCESS whose pipe carried LINE, not a runner message."""
    text = line[:STRAY_BYTES].decode("utf-8", "replace")  # pragma: no mutate: UTF-8 too
    more = f"... ({len(line):,} bytes)" if len(line) > STRAY_BYTES else ""
    return {"type": "WorkerPipeError",
            "message": f"worker process {process} wrote {text!r}{more} to its pipe to the "
                       "shard, not a runner message: its script wrote to a file descriptor it "
                       "did not open; the worker was replaced"}
