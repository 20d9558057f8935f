"""The lines between a shard and its workers: the usual shapes written and read directly
are exactly what json writes and reads; every other shape goes through json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from prs_runner.execution.worker_messages import (
    SHOWN_MAX,
    STRAY_BYTES,
    decode_command,
    decode_events,
    encode_command,
    encode_event,
    runner_event,
    shown,
    stray_command_error,
    stray_error,
    take_lines,
    unfit_error,
)


def plain(mb_id: int = 7, status: str = "succeeded", **fields: Any) -> dict[str, Any]:
    return {"done": mb_id, "succeeded": 1, "failed": 0, "rows": 1, "status": status} | fields


@pytest.mark.parametrize(("mb_id", "tries"), [(0, 1), (7, 3), (123_456_789, 10)])
def test_a_run_command_reads_back_as_json_reads_it(mb_id: int, tries: int) -> None:
    line = encode_command(mb_id, tries)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_command(line) == json.loads(line) == {"run": mb_id, "try": tries}
    assert decode_command(line[:-1]) == {"run": mb_id, "try": tries}  # without its newline


@pytest.mark.parametrize("line", [
    b'{"stop": true}\n',
    b'{"stop":true}',
    b'{"run": 3, "try": 1}\n',  # json.dumps's spacing
    b'{"try":1,"run":3}\n',  # another order
    b'{"run":0,"try":1}\n',
    b'{"run": 0, "try": 1}\n',  # the first mini-batch, the first try, by json
])
def test_other_spellings_of_a_command_are_read_by_json(line: bytes) -> None:
    assert decode_command(line) == json.loads(line)


@pytest.mark.parametrize(("line", "stray"), [
    (b"junk\n", "'junk'"),
    (b"\n", "''"),
    (b'{"run":1_0,"try":1}\n', """'{"run":1_0,"try":1}'"""),  # int() would take it
    (b'{"run":+1,"try":1}\n', """'{"run":+1,"try":1}'"""),
    (b'{"run":1,"try":1', """'{"run":1,"try":1'"""),  # cut short
    (b'{"run":1,"try":2X', """'{"run":1,"try":2X'"""),  # no closing brace
    (b'{"run": ,"try":1}\n', """'{"run": ,"try":1}'"""),
    (b'{"run":1,"try":}\n', """'{"run":1,"try":}'"""),
    (b'{"run":3,"try":1,"extra":2}\n', """'{"run":3,"try":1,"extra":2}'"""),
    (b'{"run":-3,"try":1}\n', """'{"run":-3,"try":1}'"""),
    (b'{"run":3,"try":0}\n', """'{"run":3,"try":0}'"""),
    (b'{"run":3,"try":-1}\n', """'{"run":3,"try":-1}'"""),
    (b'{"run":3}\n', """'{"run":3}'"""),
    (b'{"run":3,"try":1.5}\n', """'{"run":3,"try":1.5}'"""),
    (b'{"run":3.0,"try":1}\n', """'{"run":3.0,"try":1}'"""),
    (b'{"run":true,"try":1}\n', """'{"run":true,"try":1}'"""),
    (b'{"run":"3","try":1}\n', """'{"run":"3","try":1}'"""),
    (b'{"run":3,"try":true}\n', """'{"run":3,"try":true}'"""),
    (b'{"stop":false}\n', """'{"stop":false}'"""),
    (b'{"stop":1}\n', """'{"stop":1}'"""),
    (b'{"stop":true,"run":1}\n', """'{"stop":true,"run":1}'"""),
    (b'{}\n', "'{}'"),
    (b'[{"stop":true}]\n', """'[{"stop":true}]'"""),
    (b'null\n', "'null'"),
    (b"\xff\xfe{\n", repr("\ufffd\ufffd{")),
    (b"z" * 100, repr("z" * STRAY_BYTES) + "... (100 bytes)"),
])
def test_a_line_that_is_no_command_of_the_shards_reads_as_stray(line: bytes, stray: str) -> None:
    """A script can open its worker's command pipe for writing (/proc/self/fd); the worker
    acts only on the shapes a shard sends."""
    assert decode_command(line) == {"stray": stray}


@pytest.mark.parametrize("message", [
    {"done": [plain()], "requests": 0},
    {"done": [plain(1), plain(2, status="failed"), plain(3, succeeded=0, failed=4, rows=0)],
     "requests": 12},
    {"done": [], "requests": 0},
])
def test_a_plain_done_is_written_as_json_writes_it(message: dict[str, Any]) -> None:
    line = encode_event(message)
    assert line == json.dumps(message, separators=(",", ":")).encode() + b"\n"
    assert json.loads(line) == message


@pytest.mark.parametrize("message", [
    {"done": [plain(item_error={"type": "FewerResults", "message": "a \"quoted\" one"})],
     "requests": 0},
    {"done": [plain(status='odd"status')], "requests": 0},
    {"done": [plain(succeeded=True)], "requests": 0},  # a bool is not a count
    {"done": [plain(rows=1.5)], "requests": 0},
    {"done": [plain(done="7")], "requests": 0},
    {"done": [plain()], "requests": 1.0},
    {"done": [plain()], "requests": True},
    {"done": [plain()]},
    {"done": [plain()], "requests": 0, "extra": 1},
    {"done": [{"done": 1}], "requests": 0},
    {"done": ["not a record"], "requests": 0},
    {"done": (plain(),), "requests": 0},
    {"ready": True},
    {"error": {"type": "ValueError", "message": "bad\nline"}, "id": 3},
    {"init_failed": {"type": "ImportError", "message": "é"}, "lasting": True},
])
def test_any_other_event_is_written_by_json(message: dict[str, Any]) -> None:
    line = encode_event(message)
    assert line == json.dumps(message).encode() + b"\n"


def test_events_read_in_one_go_are_each_line_s_value() -> None:
    lines = [encode_event({"done": [plain(i)], "requests": i})[:-1] for i in range(5)]
    lines.append(b'{"ready": true}')
    assert decode_events(lines) == ([json.loads(line) for line in lines], None)


@pytest.mark.parametrize("stray", [
    b'{"done": [',  # cut
    b"junk",
    b"1, 2",  # two values on one line: not one event each
    b"",
    b"42",  # JSON, but not an object: no runner message is one
    b'"ready"',
    b"[1]",
    b"null",
    b'{"ready": true} {"ready": true}',
    b"\xff\xfe",
])
def test_events_before_a_stray_line_are_read_and_the_stray_line_is_named(
        stray: bytes) -> None:
    lines = [b'{"ready": true}', b'{"ran": 4}', stray, b'{"ran": 5}']
    assert decode_events(lines) == ([{"ready": True}, {"ran": 4}], stray)


@pytest.mark.parametrize("lines", [[], [b'{"ran": 1}'], [b'{"ready": true}', b'{"ran": 2}']])
def test_lines_of_runner_messages_have_no_stray_line(lines: list[bytes]) -> None:
    assert decode_events(lines) == ([json.loads(line) for line in lines], None)


def test_lines_joined_into_runner_messages_are_read_one_by_one() -> None:
    """Parsed in one call, two lines can make one value, and a third two: the count agrees,
    but the value is no runner message, so the lines are read one by one."""
    lines = [b'{"ran": [1', b'2]}, {"ready": true}']
    assert decode_events(lines) == ([], lines[0])


ERROR = {"type": "ValueError", "message": "bad", "traceback": "Traceback ..."}
ENTRY = {"done": 3, "succeeded": 2, "failed": 1, "rows": 2, "status": "succeeded"}


@pytest.mark.parametrize("message", [
    {"ready": True},
    {"ran": 0},
    {"done": [], "requests": 0},
    {"done": [ENTRY, ENTRY | {"done": 4}], "requests": 7},
    {"done": [ENTRY | {"item_error": {"type": "FewerResults", "message": "m"}}],
     "requests": 0},
    {"error": ERROR, "id": 3, "seconds": 0.5},
    {"error": ERROR, "id": 3, "seconds": 2},
    {"error": {"type": "T", "message": "m"}, "id": 3, "seconds": 1.0},
    {"init_failed": ERROR, "lasting": False},
    {"init_failed": ERROR, "lasting": True},
    {"commit_failed": "no space left", "id": 9},
    {"stray_command": "'junk'"},
    {"stopped": True},
])
def test_the_messages_a_worker_sends_are_runner_messages(message: dict[str, Any]) -> None:
    assert runner_event(message)
    assert decode_events([json.dumps(message).encode()]) == ([message], None)


@pytest.mark.parametrize("message", [
    {},
    {"a": 1},
    {"ready": False},
    {"ready": 1},
    {"ready": True, "x": 1},
    {"ran": "4"},
    {"ran": 4.0},
    {"ran": True},
    {"ran": None},
    {"done": 5},
    {"done": [5], "requests": 0},
    {"done": "abc", "requests": 0},
    {"done": [], "requests": "lots"},
    {"done": []},
    {"done": [ENTRY]},
    {"done": [ENTRY | {"done": "3"}], "requests": 0},
    {"done": [ENTRY | {"succeeded": 1.0}], "requests": 0},
    {"done": [ENTRY | {"failed": None}], "requests": 0},
    {"done": [ENTRY | {"rows": False}], "requests": 0},
    {"done": [ENTRY | {"status": 1}], "requests": 0},
    {"done": [ENTRY | {"extra": 1}], "requests": 0},
    {"done": [{k: v for k, v in ENTRY.items() if k != "rows"}], "requests": 0},
    {"done": [ENTRY | {"item_error": "text"}], "requests": 0},
    {"done": [ENTRY | {"item_error": {"type": "T"}}], "requests": 0},
    {"done": [ENTRY, 5], "requests": 0},
    {"error": 1, "id": 1, "seconds": 1.0},
    {"error": ERROR, "id": 1},
    {"error": ERROR, "id": "1", "seconds": 1.0},
    {"error": ERROR, "id": 1, "seconds": "1"},
    {"error": ERROR, "id": 1, "seconds": None},
    {"error": {"type": "T"}, "id": 1, "seconds": 1.0},
    {"error": {"message": "m"}, "id": 1, "seconds": 1.0},
    {"error": {"type": "T", "message": 5}, "id": 1, "seconds": 1.0},
    {"error": ERROR | {"more": "x"}, "id": 1, "seconds": 1.0},
    {"error": ERROR, "id": 1, "seconds": 1.0, "x": 1},
    {"init_failed": ERROR},
    {"init_failed": ERROR, "lasting": 1},
    {"init_failed": "text", "lasting": False},
    {"init_failed": {"type": "T", "message": None}, "lasting": False},
    {"commit_failed": 5, "id": 1},
    {"commit_failed": "x", "id": "1"},
    {"commit_failed": "x"},
    {"stray_command": 5},
    {"stray_command": None},
    {"stray_command": "x", "id": 1},
    {"stopped": False},
    {"stopped": 1},
], ids=repr)
def test_anything_else_is_no_runner_message(message: dict[str, Any]) -> None:
    assert not runner_event(message)
    line = json.dumps(message).encode()
    assert decode_events([b'{"ready": true}', line]) == ([{"ready": True}], line)


@pytest.mark.parametrize("value", [None, 5, "x", [], [{"ready": True}], b"{}"])
def test_a_value_that_is_not_an_object_is_no_runner_message(value: Any) -> None:
    assert not runner_event(value)


def test_a_stray_command_is_one_short_printable_line_as_a_worker_shows_it() -> None:
    """Else a script could forge one that prints lines of its own on the shard's stderr."""
    assert runner_event({"stray_command": shown("\U0001f600\x00\n".encode() * 40)})
    assert runner_event({"stray_command": "z" * SHOWN_MAX})
    assert not runner_event({"stray_command": "z" * (SHOWN_MAX + 1)})
    assert not runner_event({"stray_command": "x\nSucceeded"})
    assert not runner_event({"stray_command": "x\x1b[2J"})


def test_a_stray_line_first_leaves_no_events() -> None:
    assert decode_events([b"oops", b'{"ready": true}']) == ([], b"oops")


@pytest.mark.parametrize(("line", "shown"), [
    (b"junk", "'junk'"),
    (b"x" * STRAY_BYTES, repr("x" * STRAY_BYTES)),
    (b"x" * (STRAY_BYTES + 1), repr("x" * STRAY_BYTES) + "... (81 bytes)"),
    (b"y" * 5000, repr("y" * STRAY_BYTES) + "... (5,000 bytes)"),
    (b"\xffok", repr("\ufffdok")),
])
def test_a_stray_line_is_shown_short_in_the_workers_error(line: bytes, shown: str) -> None:
    error = stray_error(3, line)
    assert error == {
        "type": "WorkerPipeError",
        "message": f"worker process 3 wrote {shown} to its pipe to the shard, not a runner "
                   "message: its script wrote to a file descriptor it did not open"}


def test_a_message_that_does_not_fit_is_shown_short_in_the_workers_error() -> None:
    event = {"done": [plain(99)], "requests": 0}
    start = json.dumps(event)[:STRAY_BYTES]
    assert unfit_error(2, event) == {
        "type": "WorkerPipeError",
        "message": f"worker process 2 sent {start!r}... ({len(json.dumps(event))} bytes) to "
                   "the shard, a runner message that does not fit the commands it was sent: "
                   "its script wrote to one of its pipes"}
    assert unfit_error(0, {"ran": 1})["message"].startswith(
        """worker process 0 sent '{"ran": 1}' to the shard, a runner message""")


def test_a_stray_command_is_named_in_the_workers_error() -> None:
    assert stray_command_error(1, "'junk'") == {
        "type": "WorkerPipeError",
        "message": "worker process 1 read 'junk' from its pipe from the shard, not a command "
                   "the shard sent: its script wrote to one of its pipes"}


class CountingJson:
    """The module's json, counting the calls to loads: the usual shapes must not need it."""

    def __init__(self) -> None:
        self.loads_calls = 0
        self.dumps = json.dumps

    def loads(self, data: Any) -> Any:
        self.loads_calls += 1
        return json.loads(data)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> CountingJson:
    from prs_runner.execution import worker_messages

    counting = CountingJson()
    monkeypatch.setattr(worker_messages, "json", counting)
    return counting


@pytest.mark.parametrize(("line", "mb_id", "tries"), [
    (b'{"run":12,"try":3}\n', 12, 3), (b'{"run":12,"try":3}', 12, 3),
    (b'{"run":0,"try":1}\n', 0, 1),
])
def test_a_run_command_is_read_without_json(counted: CountingJson, line: bytes, mb_id: int,
                                            tries: int) -> None:
    assert decode_command(line) == {"run": mb_id, "try": tries}
    assert counted.loads_calls == 0


def test_the_events_of_one_read_are_parsed_in_one_call(counted: CountingJson) -> None:
    lines = [encode_event({"done": [plain(i)], "requests": 0})[:-1] for i in range(20)]
    assert decode_events(lines) == ([{"done": [plain(i)], "requests": 0}
                                     for i in range(20)], None)
    assert counted.loads_calls == 1


@pytest.mark.parametrize(("before", "chunk", "lines", "stray", "after"), [
    (b"", b'{"ran": 1}\n', [b'{"ran": 1}'], None, b""),
    (b"", b'{"ran": 1}\n{"ra', [b'{"ran": 1}'], None, b'{"ra'),
    (b'{"ra', b'n": 1}\n', [b'{"ran": 1}'], None, b""),
    (b'{"ra', b"n", [], None, b'{"ran'),  # no newline: not split
    (b"", b"", [], None, b""),
    (b"", b"\n", [b""], None, b""),
    (b"", b"junk", [], b"junk", b"junk"),  # cannot start a message: stray before its end
    (b"", b'{"ran": 1}\njunk', [b'{"ran": 1}'], b"junk", b"junk"),
    (b"ju", b"nk\n", [b"junk"], None, b""),  # a whole line: decode_events names it
    (b"", b' {"ran": 1}', [], b' {"ran": 1}', b' {"ran": 1}'),
])
def test_whole_lines_are_taken_and_a_start_that_is_no_message_is_stray(
        before: bytes, chunk: bytes, lines: list[bytes], stray: bytes | None,
        after: bytes) -> None:
    buffer = bytearray(before)
    taken, stray_now = take_lines(buffer, chunk)
    assert ([bytes(line) for line in taken], stray_now) == (lines, stray)
    assert buffer == after


def test_the_buffer_grows_in_place() -> None:
    buffer = bytearray(b"{")
    before = id(buffer)
    take_lines(buffer, b"x" * 10)
    take_lines(buffer, b"\n{")
    assert id(buffer) == before and buffer == b"{"
