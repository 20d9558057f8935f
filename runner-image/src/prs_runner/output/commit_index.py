"""Commit-log index lines, and which committed record of a mini-batch counts. Pure.

A worker life appends its results to one payload file and commits each one with a line in
its index: the record's header, where its payload lies and the payload's CRC-32, prefixed by
the CRC-32 of the line itself. A line that is torn (cut short by a crash or lost in a power
cut) fails its checksum and, with everything after it in that index, counts as never
written: those mini-batches run again.

A mini-batch can have more than one record: a failed try committed before a later success,
a rerun of a failed mini-batch, or two shards that both ran it while one took it from the
other. The one that counts (`chosen`) is the same for every reader: a success over a
failure, then the later life, then the later line.
"""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prs_runner.output.results import SUCCEEDED, ResultHeader

CHECKSUM_WIDTH = 8  # hex digits of the CRC-32 that starts a line


@dataclass  # not frozen: one is built per record read
class Commit:
    """One committed record: its header, and its payload's place in LIFE's payload file."""

    header: ResultHeader
    life: str
    line: int  # the index line's number in its life, from 0
    offset: int
    length: int
    crc: int  # of the payload

    def rank(self) -> tuple[bool, str, int]:
        return self.header.status == SUCCEEDED, self.life, self.line


def payload_crc(payload: bytes) -> int:
    return zlib.crc32(payload)


# An index line's body for the usual header: the same JSON as json.dumps would write, at a
# third of its cost (one line is written per mini-batch). The fields are ints, a finite
# float, one of two statuses, the error (None or a dict, encoded by json) and the start (None or a
# finite float). A line without "started" was written before starts were recorded: it decodes
# with None (commit_of's slower path fills in the defaults).
LINE_FORMAT = (b'{"id":%d,"shard":%d,"process":%d,"tries":%d,"items":%d,"succeeded":%d,'
               b'"failed":%d,"seconds":%s,"status":"%s","rows":%d,"error":%s,'
               b'"payload_bytes":%d,"started":%s,"offset":%d,"crc":%d}')
PLAIN_STATUSES = frozenset({"succeeded", "failed"})


def encode_line(header: ResultHeader, offset: int, length: int, crc: int) -> bytes:
    started = header.started
    if header.status in PLAIN_STATUSES and math.isfinite(header.seconds) and (
            started is None or math.isfinite(started)):
        plain = header.error is None  # pragma: no mutate: json.dumps(None) is null too
        error = b"null" if plain else json.dumps(header.error, separators=(",", ":")).encode()
        body = LINE_FORMAT % (
            header.id, header.shard, header.process, header.tries, header.items,
            header.succeeded, header.failed, repr(float(header.seconds)).encode(),
            header.status.encode(), header.rows, error, length,
            b"null" if started is None else repr(float(started)).encode(), offset, crc)
    else:
        fields = {**vars(header), "payload_bytes": length, "offset": offset, "crc": crc}
        body = json.dumps(fields, separators=(",", ":")).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode_line(line: bytes, life: str, number: int) -> Commit | None:
    """The commit on LINE, or None when it is torn (incomplete, or its checksum fails)."""
    body = sound_body(line)
    if body is None:
        return None
    try:
        return commit_of(json.loads(body), life, number)
    except ValueError:
        return None


def sound_body(line: bytes) -> bytes | None:
    """The JSON body of a whole line whose checksum holds; None for a torn line."""
    body = line[CHECKSUM_WIDTH + 1 : -1]
    whole = line.endswith(b"\n") and line[CHECKSUM_WIDTH : CHECKSUM_WIDTH + 1] == b" "
    return body if whole and sound(line[:CHECKSUM_WIDTH], body) else None


LINE_FIELDS = frozenset({*(f.name for f in dataclasses.fields(ResultHeader)), "offset", "crc"})


def commit_of(fields: object, life: str, number: int) -> Commit | None:
    """The commit a sound line's fields describe; None for fields of some other shape."""
    if not isinstance(fields, dict):
        return None
    if fields.keys() == LINE_FIELDS:  # as encode_line writes them: nothing to default
        offset, crc = fields.pop("offset"), fields.pop("crc")
        header = object.__new__(ResultHeader)  # a merge reads one per mini-batch: no __init__
        header.__dict__ = fields
        return Commit(header, life, number, offset, header.payload_bytes or 0, crc)
    try:
        offset, crc = fields.pop("offset"), fields.pop("crc")
        header = ResultHeader(**fields)
    except (KeyError, TypeError):
        return None
    return Commit(header, life, number, offset, header.payload_bytes or 0, crc)


def decode_index(data: bytes, life: str,
                 wanted: Callable[[int], bool] | None = None) -> list[Commit]:
    """The commits of one index, up to its first torn line (only those of the mini-batches
    WANTED, when given)."""
    commits, _ = decode_lines(data, life)
    return commits if wanted is None else [c for c in commits if wanted(c.header.id)]


def decode_lines(data: bytes, life: str, first: int = 0) -> tuple[list[Commit], bool]:
    """The commits of DATA, lines of LIFE's index from its line number FIRST on, up to the
    first torn line; and whether there was one (nothing after it ever counts)."""
    lines = data.splitlines(keepends=True)
    bodies = []
    for line in lines:
        body = sound_body(line)
        if body is None:
            break
        bodies.append(body)
    commits = []
    for number, fields in enumerate(parsed(bodies), first):
        commit = commit_of(fields, life, number)
        if commit is None:
            break
        commits.append(commit)
    return commits, len(commits) < len(lines)


def damage(data: bytes) -> tuple[int, int] | None:
    """Where the index DATA is damaged: the number of its first torn line (from 0) and how
    many sound lines follow it, which do not count. None when none follows: a torn last
    line is what a crash while appending leaves. Sound lines after a torn one are a log
    damaged in place: a write from outside the runner, or a crash that lost a page of it."""
    commits, torn = decode_lines(data, "")  # pragma: no mutate: no life is read here
    if not torn:
        return None
    lines = data.splitlines(keepends=True)[len(commits) + 1:]
    after = sum(sound_body(line) is not None for line in lines)
    return (len(commits), after) if after else None


def parsed(bodies: list[bytes]) -> list[object]:
    """The JSON values of BODIES, up to the first that is not JSON. One parse of them all as
    an array (one call, not one per line) when each is one value, else line by line."""
    try:
        values = json.loads(b"[%s]" % b",".join(bodies))  # pragma: no mutate: the slow path agrees
        if len(values) == len(bodies):  # pragma: no mutate: the slow path agrees
            return values  # type: ignore[no-any-return]
    except ValueError:  # pragma: no mutate: the slow path agrees
        pass
    values = []
    for body in bodies:
        try:
            values.append(json.loads(body))
        except ValueError:
            break
    return values


def sound(checksum: bytes, body: bytes) -> bool:
    try:
        return int(checksum, 16) == zlib.crc32(body)
    except ValueError:
        return False


@dataclass(frozen=True)
class Run:
    """What a shard that looks for work reads of a record: which mini-batch, the shard that
    ran it, how long it took and when it ended (Unix seconds; None: recorded before starts
    were)."""

    id: int
    shard: int
    seconds: float
    ended: float | None


def index_runs(data: bytes) -> list[Run]:
    """The runs an index commits, up to its first torn line, read from LINE_FORMAT's fixed
    fields without decoding the records (a line of another shape is decoded)."""
    runs = []
    for line in data.splitlines(keepends=True):
        body = sound_body(line)
        run = None if body is None or not body.startswith(b'{"id":') else run_of(body)
        if run is None:
            break
        runs.append(run)
    return runs


def run_of(body: bytes) -> Run | None:
    head, tail = body.split(b",", 8), body.rsplit(b",", 3)  # pragma: no mutate: see below
    try:
        # LINE_FORMAT's fields around the error (which may hold anything): read in place
        fixed = len(head) + len(tail) == 13 and head[1][:8] + head[7][:10] + tail[1][:10] == (
            b'"shard":"seconds":"started":')  # pragma: no mutate: json reads the same, slower
        if fixed:
            begun, seconds = tail[1][10:], float(head[7][10:])
            return Run(int(head[0][6:]), int(head[1][8:]), seconds,
                       None if begun == b"null" else float(begun) + seconds)
        fields = json.loads(body)
        start, took = fields.get("started"), float(fields["seconds"])
        return Run(int(fields["id"]), int(fields["shard"]), took,
                   None if start is None else float(start) + took)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def chosen(commits: Iterable[Commit]) -> dict[int, Commit]:
    """The commit that counts for each mini-batch (see the module docstring)."""
    best: dict[int, Commit] = {}
    for commit in commits:
        held = best.get(commit.header.id)
        if held is None or commit.rank() > held.rank():  # pragma: no mutate: equal: the same line
            best[commit.header.id] = commit
    return best
