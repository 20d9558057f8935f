"""The lines a shard supervisor and its workers exchange over their pipes: commands to a
worker, events back. Each is one JSON object per line. Pure.

A mini-batch costs one command and one event, so their usual shapes are written and read
without json's per-call cost (a few microseconds each way, in the processes that bound a
run of small mini-batches); any other shape goes through json.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

RUN_PREFIX = b'{"run":'
TRY_SEPARATOR = b',"try":'
DONE_KEYS = frozenset({"done", "requests"})
DONE_ENTRY_KEYS = frozenset({"done", "succeeded", "failed", "rows", "status"})
DONE_ENTRY = '{"done":%d,"succeeded":%d,"failed":%d,"rows":%d,"status":"%s"}'
PLAIN_STATUSES = frozenset({"succeeded", "failed"})


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


def decode_events(lines: list[bytes]) -> Iterable[Any]:
    """The events of LINES, in order: parsed in one call when they are all JSON values;
    else line by line, so that those before a line that is not are still handled first."""
    try:
        values = json.loads(b"[%s]" % b",".join(lines))
    except ValueError:
        values = None
    if isinstance(values, list) and len(values) == len(lines):
        return values
    return map(json.loads, lines)
