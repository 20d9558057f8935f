"""Commit-log index lines: what decodes, what counts as torn, and which record counts."""

from __future__ import annotations

import json
import zlib

import pytest

from prs_runner.output.commit_index import (
    Commit,
    Run,
    chosen,
    damage,
    decode_index,
    decode_line,
    decode_lines,
    encode_line,
    index_runs,
    payload_crc,
)
from prs_runner.output.results import FAILED, SUCCEEDED, ResultHeader


def header(mb_id: int = 7, status: str = SUCCEEDED, **extra: object) -> ResultHeader:
    fields: dict[str, object] = dict(id=mb_id, shard=1, process=0, tries=1, items=3,
                                     succeeded=3, failed=0, seconds=0.25, status=status)
    return ResultHeader(**(fields | extra))  # type: ignore[arg-type]


def test_a_line_round_trips_with_its_payload_place() -> None:
    line = encode_line(header(rows=2), 40, 12, 99)
    commit = decode_line(line, "life-a", 3)
    assert commit == Commit(header(rows=2, payload_bytes=12), "life-a", 3, 40, 12, 99)
    assert line.endswith(b"\n") and line[8:9] == b" "
    assert int(line[:8], 16) == zlib.crc32(line[9:-1])


@pytest.mark.parametrize("missing", [("started",), ("payload_bytes", "started"),
                                     ("rows", "error", "payload_bytes", "started")])
def test_a_line_written_before_later_fields_decodes_with_their_defaults(
    missing: tuple[str, ...]
) -> None:
    fields = {k: v for k, v in vars(header()).items() if k not in missing}
    line = resealed(json.dumps(fields | {"offset": 4, "crc": 9}).encode())
    commit = decode_line(line, "old", 2)
    assert commit == Commit(header(), "old", 2, 4, 0, 9)  # no payload length: none written
    assert commit is not None and commit.header.payload_bytes is None
    for place in ("offset", "crc"):
        partial = {k: v for k, v in fields.items() if k != place} | {"offset": 4, "crc": 9}
        del partial[place]
        assert decode_line(resealed(json.dumps(partial).encode()), "old", 2) is None


def resealed(body: bytes) -> bytes:
    return b"%08x %s\n" % (zlib.crc32(body), body)


GOOD = encode_line(header(), 0, 5, 1)


@pytest.mark.parametrize("line", [
    GOOD[:-1],  # no newline: cut short
    GOOD[:30] + b"\n",
    b"\n",
    b"0000000 {}\n",  # too short to hold a checksum and a body
    b"zzzzzzzz {}\n",  # not a checksum
    GOOD[:9] + GOOD[9:].replace(b'"id":7', b'"id":8'),  # a changed body
    resealed(b"[1, 2]"),  # sound, but not a record
    resealed(b'{"id": 1}'),  # a record without its place
    resealed(b'{"offset": 0, "crc": 0, "bogus": 1}'),
    resealed(b"{not json"),
    resealed(GOOD[9:-1]).replace(b" ", b"|", 1),  # sound, but not the separator
    resealed(GOOD[9:-1])[:-1] + b"}",  # sound without its last byte, and no newline
    b"zzzzzzzz " + GOOD[9:],  # a record, but no checksum
], ids=["no-newline", "cut", "empty", "short", "hex", "changed", "list", "no-place",
        "unknown-field", "not-json", "separator", "no-newline-sound", "no-checksum"])
def test_a_torn_or_foreign_line_is_not_a_commit(line: bytes) -> None:
    assert decode_line(line, "life", 0) is None


def test_an_index_is_read_up_to_its_first_torn_line() -> None:
    lines = [encode_line(header(i), i * 5, 5, i) for i in range(4)]
    whole = decode_index(b"".join(lines), "life")
    assert [c.header.id for c in whole] == [0, 1, 2, 3]
    assert [c.line for c in whole] == [0, 1, 2, 3]
    torn = decode_index(lines[0] + lines[1][:-9] + lines[2] + lines[3], "life")
    assert [c.header.id for c in torn] == [0]
    assert decode_index(b"", "life") == []


LINES = [encode_line(header(i), i * 5, 5, i) for i in range(4)]


@pytest.mark.parametrize(("data", "found"), [
    (b"", None),
    (b"".join(LINES), None),
    (b"".join(LINES[:3]) + LINES[3][:-9], None),  # a torn last line: a crash appending
    (b"".join(LINES) + b"junk\n", None),
    (b"".join(LINES) + b"\0" * 4096, None),
    (LINES[0] + b"XXXX" + LINES[1][4:] + LINES[2] + LINES[3], (1, 2)),  # overwritten
    (b"XXXX" + LINES[0][4:] + b"".join(LINES[1:]), (0, 3)),
    (LINES[0] + LINES[1][:-9] + LINES[2] + LINES[3], (1, 1)),  # glued to the next line
    (LINES[0] + b"\0" * 20 + b"\n" + LINES[3], (1, 1)),  # a page lost in a crash
    (LINES[0] + b"junk\n" + b"junk\n" + LINES[3], (1, 1)),
    (LINES[0] + b"%08x {}\n" % zlib.crc32(b"{}") + LINES[2], (1, 1)),  # sound, no record
])
def test_a_damaged_index_is_one_with_sound_lines_after_a_torn_one(
        data: bytes, found: tuple[int, int] | None) -> None:
    assert damage(data) == found


def commit(mb_id: int, life: str, line: int = 0, status: str = SUCCEEDED) -> Commit:
    return Commit(header(mb_id, status), life, line, 0, 0, 0)


@pytest.mark.parametrize(("records", "expected"), [
    ([commit(1, "a")], ("a", 0)),
    ([commit(1, "a", status=FAILED), commit(1, "b")], ("b", 0)),  # a later success
    ([commit(1, "b"), commit(1, "a", status=FAILED)], ("b", 0)),  # success over a failure
    ([commit(1, "b", status=FAILED), commit(1, "a")], ("a", 0)),
    ([commit(1, "a"), commit(1, "b")], ("b", 0)),  # two successes: the later life
    ([commit(1, "b"), commit(1, "a")], ("b", 0)),
    ([commit(1, "a", 0), commit(1, "a", 4)], ("a", 4)),  # same life: the later line
    ([commit(1, "a", 4), commit(1, "a", 0)], ("a", 4)),
    ([commit(1, "a", status=FAILED), commit(1, "b", status=FAILED)], ("b", 0)),
])
def test_the_record_that_counts(records: list[Commit], expected: tuple[str, int]) -> None:
    best = chosen(records)
    assert list(best) == [1]
    assert (best[1].life, best[1].line) == expected


def test_each_mini_batch_gets_its_own_choice() -> None:
    best = chosen([commit(1, "a"), commit(2, "a", 1), commit(1, "b", 2)])
    assert {k: (v.life, v.line) for k, v in best.items()} == {1: ("b", 2), 2: ("a", 1)}


def test_payload_crc_is_crc32() -> None:
    assert payload_crc(b"") == 0
    assert payload_crc(b"rows\n") == zlib.crc32(b"rows\n")


@pytest.mark.parametrize("record", [
    header(),
    header(status=FAILED, error={"type": "ValueError", "message": 'a "quoted"\nline é'}),
    header(seconds=1e-07, rows=12),
    header(seconds=3),  # an int where a float is expected
    header(status='odd " status'),  # not one of the two: json writes it
    header(seconds=float("nan")),
    header(started=1767225600.123456),  # the try's start, as the worker records it
    header(started=1767225600),  # an int where a float is expected
    header(started=float("inf")),  # not finite: json writes it
])
def test_the_fast_line_is_the_json_line(record: ResultHeader) -> None:
    line = encode_line(record, 7, 9, 11)
    body = line[9:-1]
    fields = {**vars(record), "payload_bytes": 9, "offset": 7, "crc": 11}
    if record.status in ("succeeded", "failed") and record.seconds == record.seconds and (
            record.started is None or record.started != float("inf")):
        fields["seconds"] = float(fields["seconds"])
        fields["started"] = None if record.started is None else float(record.started)
    assert body == json.dumps(fields, separators=(",", ":")).encode()
    decoded = decode_line(line, "life", 0)
    assert decoded is not None and decoded.header.status == record.status
    assert decoded.header.error == record.error
    assert decoded.header.started == record.started


def ids_in(data: bytes) -> list[int]:
    return [run.id for run in index_runs(data)]


def test_index_runs_reads_the_ids_up_to_the_first_torn_line() -> None:
    lines = [encode_line(header(i), 0, 0, 0) for i in (4, 2, 9)]
    assert ids_in(b"".join(lines)) == [4, 2, 9]
    assert ids_in(lines[0] + lines[1][:-3] + b"\n" + lines[2]) == [4]
    assert ids_in(resealed(b'{"offset":1}') + lines[0]) == []  # not a record's line
    assert ids_in(resealed(b'{"id":x,"a":1}')) == []
    assert ids_in(b"") == []
    odd = encode_line(header(7, status="odd"), 0, 0, 0)  # the json fallback: id first too
    assert ids_in(odd) == [7]


@pytest.mark.parametrize(("record", "run"), [
    (header(4, started=100.5), Run(4, 1, 0.25, 100.75)),
    (header(4, shard=3, seconds=2.0, started=10.0), Run(4, 3, 2.0, 12.0)),
    (header(4), Run(4, 1, 0.25, None)),  # recorded before starts were
    # An error with commas and a field's name in it: the fixed fields are read around it.
    (header(5, status=FAILED, error={"type": "E", "message": 'a, "started":1, b'},
            started=7.0), Run(5, 1, 0.25, 7.25)),
    (header(6, status="odd", started=1.0, seconds=1.5), Run(6, 1, 1.5, 2.5)),  # json path
    (header(6, status="odd"), Run(6, 1, 0.25, None)),
])
def test_index_runs_reads_who_ran_what_and_when_it_ended(record: ResultHeader,
                                                        run: Run) -> None:
    line = encode_line(record, 0, 0, 0)
    assert index_runs(line) == [run]
    assert index_runs(line + line[:-4] + b"\n" + line) == [run]  # up to a torn line


@pytest.mark.parametrize(("body", "run"), [
    (b'{"id":3,"seconds":1.5,"shard":2,"started":4.0}', Run(3, 2, 1.5, 5.5)),
    (b'{"id":3,"shard":2,"seconds":1.5}', Run(3, 2, 1.5, None)),
    (b'{"id":3,"shard":2,"seconds":2,"started":null,"x":[1,2]}', Run(3, 2, 2.0, None)),
])
def test_a_line_of_another_shape_is_decoded(body: bytes, run: Run) -> None:
    assert index_runs(resealed(body)) == [run]


@pytest.mark.parametrize("body", [
    b'{"id":1,"shard":x,"process":0,"tries":1,"items":1,"succeeded":1,"failed":0,'
    b'"seconds":1.0,"status":"succeeded","rows":0,"error":null,"payload_bytes":0,'
    b'"started":1.0,"offset":0,"crc":0}',
    b'{"id":1,"shard":0,"process":0,"tries":1,"items":1,"succeeded":1,"failed":0,'
    b'"seconds":1.0,"status":"succeeded","rows":0,"error":null,"payload_bytes":0,'
    b'"started":y,"offset":0,"crc":0}',
    b'{"id":1,"seconds":1.0}',  # no shard
    b'{"id":1,"shard":0}',  # no seconds
    b'{"id":1,"shard":0,"seconds":"a"}',
    b'{"id":1,"shard":0,"seconds":1.0,"started":"b"}',
    b'{"id":[1],"shard":0,"seconds":1.0}',
])
def test_a_line_index_runs_cannot_read_ends_the_index(body: bytes) -> None:
    assert index_runs(resealed(body)) == []


def test_an_index_read_for_some_mini_batches_keeps_their_line_numbers() -> None:
    data = b"".join(encode_line(header(i), 0, 0, 0) for i in (4, 2, 9, 2))
    kept = decode_index(data, "life", {2, 9}.__contains__)
    assert [(c.header.id, c.line) for c in kept] == [(2, 1), (9, 2), (2, 3)]
    odd = encode_line(header(7, status="odd"), 0, 0, 0) + resealed(b"[1]")  # line by line
    assert [c.header.id for c in decode_index(odd + data, "life", {7, 4}.__contains__)] == [7]
    assert [c.header.id for c in decode_index(odd, "life", {8}.__contains__)] == []


def test_an_index_stops_at_a_sound_line_that_is_not_one_record() -> None:
    lines = [encode_line(header(i), 0, 0, 0) for i in (1, 2)]
    for foreign in (resealed(b"{not json"), resealed(b"1,2"), resealed(b'{"id":3},{"id":4}')):
        assert [c.header.id for c in decode_index(lines[0] + foreign + lines[1], "l")] == [1]
    assert [c.header.id for c in decode_index(b"".join(lines), "l")] == [1, 2]


LINES = [encode_line(header(i), 0, 0, 0) for i in range(3)]


@pytest.mark.parametrize(("data", "first", "ids", "numbers", "torn"), [
    (b"".join(LINES), 0, [0, 1, 2], [0, 1, 2], False),
    (b"".join(LINES), 5, [0, 1, 2], [5, 6, 7], False),  # read on from line 5 of the index
    (b"", 3, [], [], False),
    (LINES[0] + LINES[1][:-1], 0, [0], [0], True),  # a last line without its newline
    (LINES[0] + LINES[1][:-9] + b"\n" + LINES[2], 2, [0], [2], True),  # nothing after it
    (LINES[0] + resealed(b"[1]") + LINES[2], 0, [0], [0], True),  # sound, not a record
    (resealed(b"[1]"), 0, [], [], True),
])
def test_lines_are_decoded_from_a_line_number_up_to_a_torn_one(
    data: bytes, first: int, ids: list[int], numbers: list[int], torn: bool
) -> None:
    commits, was_torn = decode_lines(data, "life", first)
    assert [c.header.id for c in commits] == ids
    assert [c.line for c in commits] == numbers
    assert {c.life for c in commits} <= {"life"}
    assert was_torn is torn
