"""Cutting tabular files: record boundaries, byte and row sizing, row groups, partitions."""

from __future__ import annotations

import io
import itertools
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest

from prs_runner.planning.partition_paths import hive_values, typed_folder_value
from prs_runner.planning.plan import MiniBatch, TableSlice, part_from_json, part_to_json
from prs_runner.planning.tabular_cuts import (
    RangeCutter,
    count_records,
    group_partitions,
    group_row_groups,
    record_ends,
)
from prs_runner.planning.tabular_formats import guess_format
from prs_runner.planning.tabular_scan import BOM, LoneReturn, StrayQuote, scan_text_file


@pytest.mark.parametrize(
    ("block", "in_quotes", "quoted", "ends", "out_quotes"),
    [
        (b"a,b\n1,2\n", False, True, [4, 8], False),
        (b'a,"x\ny"\n1,2\n', False, True, [8, 12], False),  # quoted newline is no boundary
        (b'"a ""q""\n b"\nc\n', False, True, [13, 15], False),  # doubled quotes inside
        (b'x\n",y\n', True, True, [6], False),  # starts inside a quoted field
        (b'a,"open\nstill\n', False, True, [], True),  # ends inside one
        (b"no quotes\n\n", True, True, [], True),  # inside quotes and no quote closes it
        (b'{"a": "\\"x"}\n{"a": 2}\n', False, False, [13, 22], False),  # JSON Lines: any newline
        (b"", False, True, [], False),
        (b"tail without newline", False, True, [], False),
    ],
)
def test_record_ends(
    block: bytes, in_quotes: bool, quoted: bool, ends: list[int], out_quotes: bool
) -> None:
    found, still_inside, _, _ = record_ends(block, in_quotes, quoted)
    assert found.tolist() == ends
    assert still_inside is out_quotes


@pytest.mark.parametrize(
    ("block", "previous_end", "cumulative"),
    [
        (b"a\nb\n", 0, [1, 2]),
        (b"a\n\nb\n", 0, [1, 1, 2]),  # a blank line is a cut point, not a record
        (b"a\r\n\r\nb\r\n", 0, [1, 1, 2]),
        (b"\nx\n", 0, [0, 1]),
    ],
)
def test_count_records_leaves_out_blank_lines(
    block: bytes, previous_end: int, cumulative: list[int]
) -> None:
    ends, _, _, _ = record_ends(block, False, True)
    assert count_records(block, ends, previous_end, 0).tolist() == cumulative


def csv_with_quoted_newlines(rows: int, seed: int) -> bytes:
    rng = random.Random(seed)
    texts = ["plain", "with, comma", 'say "hi"', "two\nlines", "three\nshort\nlines", ""]
    frame = pd.DataFrame({"id": range(rows), "text": [rng.choice(texts) for _ in range(rows)],
                          "value": [rng.random() for _ in range(rows)]})
    return frame.to_csv(index=False).encode()


@pytest.mark.parametrize("block_bytes", [7, 64, 1000, 1 << 20])
@pytest.mark.parametrize(("target_bytes", "target_rows"), [(50, None), (700, None),
                                                           (None, 1), (None, 37)])
def test_csv_ranges_cover_every_record_once(
    block_bytes: int, target_bytes: int | None, target_rows: int | None
) -> None:
    data = csv_with_quoted_newlines(300, seed=block_bytes)
    header_end, ranges = scan_text_file(io.BytesIO(data), len(data), "csv", target_bytes,
                                        target_rows, block_bytes=block_bytes)
    assert data[:header_end] == b"id,text,value\n"
    assert ranges[0].start == header_end and ranges[-1].end == len(data)
    assert all(a.end == b.start for a, b in itertools.pairwise(ranges))
    ids: list[int] = []
    for part in ranges:
        frame = pd.read_csv(io.BytesIO(data[:header_end] + data[part.start : part.end]))
        assert len(frame) == part.records
        ids += frame["id"].tolist()
        if target_rows is not None:
            assert part.records == target_rows or part is ranges[-1]
        else:
            assert part.end - part.start >= (target_bytes or 0) or part is ranges[-1]
    assert ids == list(range(300))


@pytest.mark.parametrize(
    ("data", "target_rows", "expected"),
    [
        (b"a\n1\n2\n3", 2, [(2, 6, 2), (6, 7, 1)]),  # last record without newline
        (b"a\n1\n2\n3\n\n\n", 2, [(2, 6, 2), (6, 10, 1)]),  # trailing blank lines
        (b"a\n", 5, []),  # header only
        (b"", 5, []),
        (b"a,b\n", 1, []),
        # Blank lines before the header are not the header (the header was a blank line,
        # and each mini-batch's first record was taken for its column names)
        (b"\n\na\n1\n2\n3\n", 2, [(4, 8, 2), (8, 10, 1)]),
        (b"\r\n\na\n1\n", 2, [(5, 7, 1)]),
        (b"\n\n\n", 2, []),
    ],
)
def test_csv_edges(data: bytes, target_rows: int, expected: list[tuple[int, int, int]]) -> None:
    _, ranges = scan_text_file(io.BytesIO(data), len(data), "csv", None, target_rows,
                               block_bytes=3)
    assert [(r.start, r.end, r.records) for r in ranges] == expected


def test_blank_crlf_lines_never_count_whatever_the_block_size() -> None:
    data = b"a\r\n1\r\n\r\n2\r\n\r\n\r\n3\r\n\r\n"
    for block_bytes in range(1, len(data) + 1):
        _, ranges = scan_text_file(io.BytesIO(data), len(data), "csv", None, 1,
                                   block_bytes=block_bytes)
        assert [r.records for r in ranges] == [1, 1, 1], block_bytes


def test_jsonl_has_no_header_and_splits_at_every_line() -> None:
    data = b'{"a": "x\\ny"}\n{"a": "\\""}\n{"a": 3}\n'
    header_end, ranges = scan_text_file(io.BytesIO(data), len(data), "jsonl", None, 2)
    assert header_end == 0
    second_end = len(b"".join(data.splitlines(keepends=True)[:2]))
    assert [(r.start, r.end, r.records) for r in ranges] == [(0, second_end, 2),
                                                             (second_end, len(data), 1)]


@pytest.mark.parametrize(
    ("rows", "sizes", "target_bytes", "target_rows", "expected"),
    [
        ([10, 10, 10], [100, 100, 100], 150, None, [(0, 1), (2,)]),
        ([10, 10, 10], [500, 100, 100], 150, None, [(0,), (1, 2)]),  # big group: its own
        ([10, 10, 10], [100, 100, 100], None, 10, [(0,), (1,), (2,)]),
        ([10, 10, 10], [100, 100, 100], None, 25, [(0, 1, 2)]),
        ([10, 0, 10], [100, 10, 100], 100, None, [(0,), (1, 2)]),
        ([10, 0], [100, 10], 100, None, [(0,)]),  # a run of empty groups only is dropped
        ([], [], 100, None, []),
    ],
)
def test_group_row_groups(
    rows: list[int], sizes: list[int], target_bytes: int | None, target_rows: int | None,
    expected: list[tuple[int, ...]],
) -> None:
    runs = group_row_groups(rows, sizes, target_bytes, target_rows)
    assert [r.row_groups for r in runs] == expected
    assert sum(r.rows for r in runs) == sum(rows)


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["a.csv", "b/c.CSV"], "csv"),
        (["a.parquet", "b.pq"], "parquet"),
        (["x.jsonl", "y.ndjson"], "jsonl"),
        (["a.csv", "b.parquet"], None),
        (["README"], None),
        (["a.tsv"], None),  # another delimiter: say format (and it is not supported)
        (["a.json"], None),  # usually one JSON document, not JSON Lines
    ],
)
def test_guess_format(paths: list[str], expected: str | None) -> None:
    assert guess_format(paths) == expected


@pytest.mark.parametrize(
    ("path", "values"),
    [
        ("store=12/brand=x/part.parquet", {"store": "12", "brand": "x"}),
        ("root/store=1/a=b=c/file.csv", {"store": "1", "a": "b=c"}),
        ("store=5.csv", {}),  # a file name is not a folder
        ("plain/file.csv", {}),
    ],
)
def test_hive_values(path: str, values: dict[str, str]) -> None:
    assert hive_values(path) == values


@pytest.mark.parametrize(("text", "value"), [
    ("12", 12), ("-3", -3), ("x1", "x1"), ("", ""), ("0", 0),
    ("007", "007"), ("-0", "-0"), ("+5", "+5"),  # not as an int writes them: text, kept apart
    (str(2 ** 63 - 1), 2 ** 63 - 1), (str(-(2 ** 63)), -(2 ** 63)),  # int64's range
    (str(2 ** 63), str(2 ** 63)), (str(-(2 ** 63) - 1), str(-(2 ** 63) - 1)),
    ("99999999999999999999999", "99999999999999999999999"),
])
def test_typed_folder_value(text: str, value: Any) -> None:
    assert typed_folder_value(text) == value


def test_group_partitions_orders_by_value_and_splits_bytes_by_rows() -> None:
    groups = group_partitions([
        ("a.csv", 100, {"store": 2}, 30),
        ("a.csv", 100, {"store": 1}, 10),
        ("b.csv", 50, {"store": 2}, 5),
        ("b.csv", 50, {"store": None}, 5),
    ])
    assert [g.values for g in groups] == [{"store": None}, {"store": 1}, {"store": 2}]
    assert [g.files for g in groups] == [("b.csv",), ("a.csv",), ("a.csv", "b.csv")]
    assert [g.rows for g in groups] == [5, 10, 35]
    assert [g.bytes for g in groups] == [25, 25, 100]


def test_tabular_mini_batches_round_trip_through_a_plan_part() -> None:
    batches = (
        MiniBatch(0, 0, 10, ("a.csv",), TableSlice(rows=3, start=4, end=14, header_end=4)),
        MiniBatch(1, 1, 20, ("b.parquet",), TableSlice(rows=7, row_groups=(0, 1))),
        MiniBatch(2, 0, 30, ("c.csv", "d.csv"), TableSlice(rows=9, partition={"k": "v"})),
        MiniBatch(3, 1, 5, ("e.txt",)),
    )
    again = part_from_json(part_to_json(batches))
    assert again == list(batches)
    assert sum(mb.item_count for mb in again) == 3 + 7 + 9 + 1


def test_record_ends_matches_a_python_scan_on_random_bytes() -> None:
    rng = np.random.default_rng(3)
    data = bytes(rng.choice(np.frombuffer(b'ab"\n,', dtype=np.uint8), 5000).tolist())
    found, still_inside, _, _ = record_ends(data, False, True)
    assert (found.tolist(), still_inside) == python_scan(data, True)


@pytest.mark.parametrize("start_inside", [False, True])
def test_record_ends_match_a_python_scan_over_a_long_block(start_inside: bool) -> None:
    """Quotes rare enough that quoted fields span many of the scan's 16-byte steps."""
    rng = np.random.default_rng(7)
    alphabet = np.frombuffer(b'\n"abc', dtype=np.uint8)
    data = rng.choice(alphabet, 300_011, p=[0.05, 0.001, 0.3, 0.3, 0.349]).tobytes()
    found, still_inside, _, _ = record_ends(data, start_inside, True)
    assert (found.tolist(), still_inside) == python_scan(data, True, start_inside)


@pytest.mark.parametrize("seed", range(40))
def test_record_ends_equal_byte_by_byte_references_on_short_random_blocks(seed: int) -> None:
    """Every output of the scan, on blocks of every length around its 16-byte steps (the
    tail shorter than a step is scanned apart), from every starting state."""
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b'",\n\rab', dtype=np.uint8)
    for length in range(0, 70):
        data = rng.choice(alphabet, length).tobytes()
        inside = bool(rng.integers(2))
        for quoted in (True, False):
            ends, still_inside, lone, stray = record_ends(data, inside, quoted, field_start=0)
            assert (ends.tolist(), still_inside) == python_scan(data, quoted, inside and quoted)
            if not quoted:
                assert (lone, stray) == (-1, -1)
                continue
            assert lone == first_lone_return(data, inside), data
            assert stray == first_stray_quote(data, inside), data


def test_the_ranges_are_the_same_whatever_the_block_size() -> None:
    data = csv_with_quoted_newlines(300, seed=5) * 40
    whole = scan_text_file(io.BytesIO(data), len(data), "csv", 10_000, None)
    for block_bytes in (1 << 16, 100_003, 7 * 4096 + 5):
        assert scan_text_file(io.BytesIO(data), len(data), "csv", 10_000, None,
                              block_bytes=block_bytes) == whole


def python_scan(data: bytes, quoted: bool, inside: bool = False) -> tuple[list[int], bool]:
    """The record ends found one byte at a time, and whether DATA ends inside a quoted field
    (INSIDE: it starts in one): the reference the compiled scan must equal."""
    ends = []
    for position, char in enumerate(data):
        if quoted and char == ord('"'):
            inside = not inside
        elif char == ord("\n") and not inside:
            ends.append(position + 1)
    return ends, inside


@pytest.mark.parametrize(
    ("quoted", "tail"),
    [
        pytest.param(True, b"", id="csv-without-quotes"),
        pytest.param(False, b'{"a": "\\""}\n' * 3, id="jsonl"),
        pytest.param(True, b'"q\nq",1\n' * 3 + b"z\n", id="quotes-only-at-the-end"),
    ],
)
def test_record_ends_of_a_long_block(quoted: bool, tail: bytes) -> None:
    data = b"abcdefghi\n" * 30_000 + tail
    found, still_inside, _, _ = record_ends(data, False, quoted)
    assert found.tolist() == python_scan(data, quoted)[0]
    assert still_inside is False


def test_record_ends_are_integer_offsets_even_when_there_are_none() -> None:
    for block in (b"", b"no newline"):
        found, _, _, _ = record_ends(block, False, True)
        assert found.dtype == np.int64


@pytest.mark.parametrize(
    ("block", "ends", "previous_end", "offset", "cumulative", "byte_before"),
    [
        pytest.param(b"\r\nb\n", [2, 4], 0, 0, [0, 1], -1, id="blank-crlf-line-first"),
        pytest.param(b"x\r\n\r\n", [3, 5], 0, 0, [1, 1], -1, id="blank-crlf-line-last"),
        pytest.param(b"a\nb\n", [12, 14], 10, 10, [1, 2], -1, id="in-a-later-block"),
        # "?\n" began in the previous block: its first byte is not in this block
        pytest.param(b"\nb\r", [11], 9, 10, [1], ord("b"), id="two-byte-record-across-blocks"),
        # a blank CRLF line whose CR ends the previous block
        pytest.param(b"\nb\n", [11, 13], 9, 10, [0, 1], ord("\r"), id="crlf-split-across-blocks"),
        # an LF opening the block ends a 2-byte record only when the record is 2 bytes long
        pytest.param(b"\nb\n", [11, 13], 8, 10, [1, 2], ord("\r"), id="cr-ends-a-longer-record"),
    ],
)
def test_count_records(block: bytes, ends: list[int], previous_end: int, offset: int,
                       cumulative: list[int], byte_before: int) -> None:
    found = count_records(block, np.array(ends, dtype=np.int64), previous_end, offset,
                          byte_before)
    assert found.tolist() == cumulative


@pytest.mark.parametrize(
    ("cutter", "feeds", "size", "tail", "expected"),
    [
        pytest.param((0, None, 3), [([2, 4], [1, 2]), ([6, 8, 10], [1, 2, 3])], 10, 0,
                     [(0, 6, 3), (6, 10, 2)], id="rows-carried-across-blocks"),
        pytest.param((0, None, 2), [([2, 4, 6, 8, 10], [1, 2, 3, 4, 5])], 11, 1,
                     [(0, 4, 2), (4, 8, 2), (8, 11, 2)], id="rows-tail-without-newline"),
        pytest.param((5, 4, None), [([7, 8], [1, 2]), ([12, 20], [1, 2])], 20, 0,
                     [(5, 12, 3), (12, 20, 1)], id="bytes-carried-across-blocks"),
        pytest.param((0, 2, None), [([1, 2, 3], [0, 0, 0])], 3, 0, [], id="blank-lines-only"),
        pytest.param((0, None, 1), [([], [])], 0, 0, [], id="nothing"),
    ],
)
def test_range_cutter(cutter: tuple[int, int | None, int | None],
                      feeds: list[tuple[list[int], list[int]]], size: int, tail: int,
                      expected: list[tuple[int, int, int]]) -> None:
    """`feeds`: per block, the absolute record ends and the block's cumulative record count."""
    cut = RangeCutter(*cutter)
    for ends, cumulative in feeds:
        cut.feed(np.array(ends, dtype=np.int64), np.array(cumulative, dtype=np.int64))
    assert [(r.start, r.end, r.records) for r in cut.finish(size, tail)] == expected


@pytest.mark.parametrize(
    ("rows", "sizes", "target_bytes", "target_rows", "expected"),
    [
        pytest.param([1, 10, 10], [5, 100, 100], None, 10, [((0, 1), 11, 105), ((2,), 10, 100)],
                     id="one-row-group-first"),
        pytest.param([10, 10, 1], [100, 100, 5], None, 10,
                     [((0,), 10, 100), ((1,), 10, 100), ((2,), 1, 5)], id="one-row-group-last"),
        pytest.param([1], [5], None, 10, [((0,), 1, 5)], id="one-row-group-alone"),
        pytest.param([1], [5], 1, None, [((0,), 1, 5)], id="one-row-group-alone-by-bytes"),
        pytest.param([1, 1, 1], [50, 60, 70], 100, None, [((0, 1), 2, 110), ((2,), 1, 70)],
                     id="one-row-groups-by-bytes"),
        pytest.param([3, 4], [0, 0], None, None, [((0,), 3, 0), ((1,), 4, 0)],
                     id="no-target-each-group-alone"),
    ],
)
def test_row_group_runs_keep_every_row(
    rows: list[int], sizes: list[int], target_bytes: int | None, target_rows: int | None,
    expected: list[tuple[tuple[int, ...], int, int]],
) -> None:
    runs = group_row_groups(rows, sizes, target_bytes, target_rows)
    assert [(r.row_groups, r.rows, r.bytes) for r in runs] == expected


def test_row_group_rows_and_sizes_must_pair_up() -> None:
    with pytest.raises(ValueError, match="zip"):
        group_row_groups([1, 2], [10], 100, None)


def test_group_partitions_of_one_row_files() -> None:
    groups = group_partitions([
        ("a.csv", 80, {"k": 1}, 1),
        ("b.csv", 30, {"k": 1}, 0),
        ("b.csv", 30, {"k": 2}, 3),
    ])
    assert [(g.values, g.files, g.rows, g.bytes) for g in groups] == [
        ({"k": 1}, ("a.csv", "b.csv"), 1, 80), ({"k": 2}, ("b.csv",), 3, 30)]


def test_group_partitions_orders_mixed_value_types_by_type_name() -> None:
    groups = group_partitions([
        ("a.csv", 10, {"k": "x", "j": 2}, 1),
        ("a.csv", 10, {"k": 2, "j": "y"}, 1),
        ("a.csv", 10, {"k": 2, "j": 1}, 1),
        ("a.csv", 10, {"k": None, "j": 5}, 1),
        ("a.csv", 10, {"k": 1.5, "j": 0}, 1),
    ])
    assert [tuple(g.values.values()) for g in groups] == [
        (None, 5), (1.5, 0), (2, 1), (2, "y"), ("x", 2)]


@pytest.mark.parametrize(("block", "in_quotes", "quoted", "lone"), [
    (b"a\r\nb\r\n", False, True, -1),  # CRLF
    (b"a\rb\rc", False, True, 1),  # CR only
    (b"a\r\rb", False, True, 1),  # a CR before a CR
    (b"a\n\rb\n", False, True, 2),
    (b'"a\rb"\rc', False, True, 5),  # the one in quotes is a value
    (b'a\rb"\rc"', True, True, 4),  # the block starts inside quotes
    (b'"a\rb"', False, False, -1),  # not judged in JSON Lines (a CR there is a space)
    (b"a\r", False, True, -1),  # the last byte: its next one is in the next block
    (b"\r", False, True, -1),
    (b"", False, True, -1),
    (b"abc", False, True, -1),
    (b"\r\n\r", False, True, -1),
    (b'"\r"\r\n\r\r', False, True, 5),
    (b"x" * 15 + b"\r\n" + b"x" * 15 + b"\ry", False, True, 32),  # CRLF across a step
])
def test_the_first_lone_carriage_return(block: bytes, in_quotes: bool, quoted: bool,
                                        lone: int) -> None:
    assert record_ends(block, in_quotes, quoted)[2] == lone


@pytest.mark.parametrize(("data", "offset"), [
    (b"a\rb\r", 1),
    (b"a\n1\r2\n", 3),
    (b'a\n"1\r"\r2\n', 6),
    (b"a\r\n1\r\n2\r3\n", 7),
])
def test_a_csv_with_a_lone_carriage_return_is_refused_whatever_the_block_size(
        data: bytes, offset: int) -> None:
    for block_bytes in range(1, len(data) + 1):
        with pytest.raises(LoneReturn) as raised:
            scan_text_file(io.BytesIO(data), len(data), "csv", None, 1, block_bytes=block_bytes)
        assert raised.value.offset == offset, block_bytes


@pytest.mark.parametrize("data", [b"a\r\n1\r\n2\r\n", b'a\n"1\r"\n', b"a\n1\n2\r",
                                  b'{"a": 1}\r\n'])
def test_crlf_quoted_and_final_carriage_returns_are_not_refused(data: bytes) -> None:
    fmt = "jsonl" if data.startswith(b"{") else "csv"
    for block_bytes in range(1, len(data) + 1):
        scan_text_file(io.BytesIO(data), len(data), fmt, None, 1, block_bytes=block_bytes)


def first_stray_quote(data: bytes, inside: bool = False) -> int:
    """The reference: the first quote that would open a field but does not start one (after
    the delimiter, a line end, the quote before it, or at the file's start past a BOM);
    -1: none. INSIDE: DATA starts inside a quoted field."""
    start = len(BOM) if data.startswith(BOM) else 0
    for position in range(start, len(data)):
        if data[position] != ord('"'):
            continue
        if not inside and position > start and data[position - 1] not in b',\n\r"':
            return position
        inside = not inside
    return -1


def first_lone_return(data: bytes, inside: bool = False) -> int:
    """The reference: the first carriage return with an even number of quotes before it
    (odd when DATA starts INSIDE a quoted field) followed by a byte other than a newline."""
    for position in range(len(data) - 1):
        if data[position] == ord("\r") and data[position + 1] != ord("\n") and (
                data[:position].count(b'"') % 2 == int(inside)):
            return position
    return -1


@pytest.mark.parametrize(("data", "offset"), [
    pytest.param(b'id,size\n1,5" disk\n', 11, id="inside-a-field"),
    pytest.param(b'id,size,n\n1,12",2\n', 14, id="ending-a-field"),
    pytest.param(b'id,note\n1,5" x,"two\nlines",7" y\n', 11, id="around-a-quoted-newline"),
    pytest.param(b'id,note\n1, "spaced"\n', 11, id="after-a-space"),
    pytest.param(b'a,b\n"x"y"z",1\n', 8, id="reopened-after-text"),
    pytest.param(b'a,b\n1,"two\nlines"x"\n', 18, id="after-a-quoted-newline"),
    pytest.param(BOM + b'x"a",b\n', 4, id="after-the-bom-not-first"),
])
def test_a_quote_inside_a_field_is_refused_whatever_the_block_size(data: bytes,
                                                                    offset: int) -> None:
    """pyarrow reads such a quote as text; counted as one, it would have moved the record
    ends (a cut inside a quoted field, rows merged): Succeeded with a value cut short."""
    assert first_stray_quote(data) == offset
    for block_bytes in range(1, len(data) + 1):
        with pytest.raises(StrayQuote) as raised:
            scan_text_file(io.BytesIO(data), len(data), "csv", None, 1, block_bytes=block_bytes)
        assert raised.value.offset == offset, block_bytes


@pytest.mark.parametrize("data", [
    pytest.param(b'"id","say"\n1,"he said ""hi"""\n', id="doubled"),
    pytest.param(b'a,b\n"",""\n"x\ny",""""\n', id="empty-and-only-quotes"),
    pytest.param(BOM + b'"id",v\n"1",2\n', id="bom-then-a-quoted-header"),
    pytest.param(b'a,b\r\n"1\r\n2","3"\r\n', id="crlf"),
    pytest.param(b'a\n"x"\n', id="quote-after-a-newline"),
    pytest.param(b'a,b\n1,5" x\n', id="json-lines-are-not-checked"),
])
def test_quotes_where_fields_start_are_not_refused(data: bytes) -> None:
    fmt = "jsonl" if data.endswith(b'5" x\n') else "csv"
    assert fmt == "jsonl" or first_stray_quote(data) == -1
    whole = scan_text_file(io.BytesIO(data), len(data), fmt, None, 1)
    for block_bytes in range(1, len(data) + 1):
        assert scan_text_file(io.BytesIO(data), len(data), fmt, None, 1,
                              block_bytes=block_bytes) == whole, block_bytes


@pytest.mark.parametrize("seed", range(6))
def test_the_stray_quote_found_is_the_reference_scans_in_a_long_block(seed: int) -> None:
    """Random text of quotes, commas and newlines (a quote at one of the scan's 16-byte
    steps among them): the scan stops where a byte-by-byte scan does."""
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b'",\nab', dtype=np.uint8)
    data = bytearray(rng.choice(alphabet, 200_005, p=[
        0.0004 * seed, 0.1, 0.02, 0.4, 0.4798 - 0.0004 * seed + 0.0002]).tobytes())
    data[4096] = ord('"')
    data[4095] = ord("a") if seed % 2 else ord(",")
    _, _, _, stray = record_ends(bytes(data), False, True, field_start=0)
    assert stray == first_stray_quote(bytes(data))


@pytest.mark.parametrize(("before", "stray"), [(b"a", True), (b",", False), (b"\n", False),
                                               (b'"', False)])
def test_a_quote_that_starts_a_block_is_judged_by_the_byte_before_it(before: bytes,
                                                                      stray: bool) -> None:
    """The byte before a block's first quote is the last block's (the scan is told it)."""
    data = b'"x",' + b"a" * 40 + b"\n"
    _, _, _, found = record_ends(data, False, True, byte_before=before[0])
    assert found == (0 if stray else -1)
    _, _, _, found = record_ends(data, False, True, byte_before=-1)  # the file's start
    assert found == -1


@pytest.mark.parametrize(("data", "problem"), [
    (b'a\rb"', LoneReturn(1)),
    (b'id\n1\r2,x"y\n', LoneReturn(4)),
    (b'id\n1,x"y\r2\n', StrayQuote(6)),
    (b'id\n"a\rb"\r1,x"\n', LoneReturn(8)),
])
def test_the_first_problem_in_the_file_is_the_one_refused_whatever_the_block_size(
        data: bytes, problem: LoneReturn | StrayQuote) -> None:
    """A carriage return at a block's end is judged with the next block: a stray quote of
    that block was refused first, though later in the file."""
    for block_bytes in range(1, len(data) + 1):
        for scan_bytes in range(1, block_bytes + 1):
            with pytest.raises((LoneReturn, StrayQuote)) as raised:
                scan_text_file(io.BytesIO(data), len(data), "csv", None, 1,
                               block_bytes=block_bytes, scan_bytes=scan_bytes)
            found = (type(raised.value), raised.value.offset)
            assert found == (type(problem), problem.offset), (block_bytes, scan_bytes)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_pieces_of_a_block_are_scanned_as_blocks_are(fmt: str) -> None:
    """The scan takes each block read in pieces (views of it): the ranges are the same."""
    if fmt == "csv":
        data = BOM + csv_with_quoted_newlines(60, seed=2).replace(b"\n", b"\r\n")
    else:
        data = BOM + b'  \n{"a": 1}\n\t\n \r\n{"a": "x y"}\n  {"a": 3}\n' * 20
    whole = scan_text_file(io.BytesIO(data), len(data), fmt, 300, None)
    for scan_bytes in range(1, 40):
        assert scan_text_file(io.BytesIO(data), len(data), fmt, 300, None,
                              block_bytes=7 * scan_bytes + 3, scan_bytes=scan_bytes) == whole


@pytest.mark.parametrize("data", [b"\xef\n", b"\xef\xbb\n", b"\xef \n", b"\xef\xbb \t\n{}\n",
                                  BOM + b"\t\n{}\n", BOM, b"", b"a", b"\n"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_file_that_starts_like_a_byte_order_mark_is_cut_alike_whatever_the_sizes(
        data: bytes, fmt: str) -> None:
    """Pieces shorter than a byte order mark at the file's start: \xef then a newline was a
    blank line to one size (judged as if a mark would follow) and a record to another."""
    whole = scan_text_file(io.BytesIO(data), len(data), fmt, None, 1)
    for block_bytes in range(1, len(data) + 2):
        for scan_bytes in range(1, len(data) + 2):
            assert scan_text_file(io.BytesIO(data), len(data), fmt, None, 1,
                                  block_bytes=block_bytes, scan_bytes=scan_bytes) == whole


def test_the_byte_before_a_block_is_a_byte_or_none() -> None:
    from prs_runner.planning import record_scan

    for byte_before in (-2, 256, 300):
        with pytest.raises(ValueError, match="byte_before"):
            record_scan.scan(b'"x', True, False, byte_before, -1)


@pytest.mark.parametrize("data", [
    BOM + b'\t\n{"a":1}\n',
    BOM + b' \n \r\n{"a":1}\n  \n',
    b'{"a":1}\n \n{"a":2}\n',
    b'{"a":1}\n\t \t\n\r\n \r\n{"a":2}\n',
    b'  {"a":1}\n{"a":2}\n   \n',
    b'{"a":1}\n     \n     \n{"a":2}\n   ',
    b'\n \n{"a":1}\n' + b" " * 40 + b'\n{"a":2}\n',
])
def test_a_json_line_of_spaces_is_no_record_whatever_the_block_size(data: bytes) -> None:
    """pyarrow skips a line of spaces as it skips an empty one; counted as a record, it
    charged run() a failed item it was never given."""
    import pyarrow.json as pa_json

    rows = pa_json.read_json(io.BytesIO(data)).num_rows
    for block_bytes in range(1, len(data) + 1):
        _, ranges = scan_text_file(io.BytesIO(data), len(data), "jsonl", None, 1,
                                   block_bytes=block_bytes)
        assert [r.records for r in ranges] == [1] * rows, block_bytes


def test_a_csv_line_of_spaces_stays_a_record() -> None:
    data = b"a\n1\n  \n2\n"
    _, ranges = scan_text_file(io.BytesIO(data), len(data), "csv", None, 10)
    assert [r.records for r in ranges] == [3]


@pytest.mark.parametrize(("data", "rows"), [
    pytest.param(BOM + b"\r\nid,text\r\n1,a\r\n2,b\r\n3,c\r\n4,d\r\n", 4,
                 id="bom-then-a-blank-line"),
    pytest.param(BOM + b"\n\nid\n1\n2\n", 2, id="bom-then-blank-lines"),
    pytest.param(b"text\nb\n ", 2, id="a-last-line-of-spaces"),
    pytest.param(b"text\nb\n\r", 1, id="a-last-carriage-return"),
])
def test_records_are_counted_as_pyarrow_reads_them_whatever_the_block_size(
        data: bytes, rows: int) -> None:
    """A line holding only the byte order mark was taken for the header (each mini-batch's
    first row then read as its header); a last line of spaces without its newline was no
    record, though pyarrow reads it as a value."""
    import pyarrow.csv as pa_csv

    assert pa_csv.read_csv(io.BytesIO(data)).num_rows == rows
    for block_bytes in range(1, len(data) + 1):
        _, ranges = scan_text_file(io.BytesIO(data), len(data), "csv", None, 1,
                                   block_bytes=block_bytes)
        assert [r.records for r in ranges] == [1] * rows, block_bytes


def test_a_json_line_that_starts_with_spaces_before_a_block_is_judged_whole() -> None:
    """Its spaces are in one block, its value in the next: a record (pyarrow would refuse
    this one's value; what is counted here is lines)."""
    data = b"   1\n"
    for block_bytes in range(1, len(data) + 1):
        _, ranges = scan_text_file(io.BytesIO(data), len(data), "jsonl", None, 1,
                                   block_bytes=block_bytes)
        assert [r.records for r in ranges] == [1], block_bytes


@pytest.mark.parametrize(("fmt", "listed"), [("csv", 4), ("csv", 9), ("jsonl", 2)])
def test_a_file_whose_size_changed_since_the_listing_is_refused(fmt: str, listed: int) -> None:
    """The last range ends at the listed size: rows written past it after the listing were
    left out in silence, and a short read (an object's range cut short) ended the scan."""
    from functools import partial

    from prs_runner.planning.tabular_scan import named_errors
    from prs_runner.step.spec import SpecError
    from prs_runner.storage.filesystem import FileEntry

    data = b"a\n1\n2\n" if fmt == "csv" else b'{}\n{}\n'
    stream = io.BytesIO(data)
    read = partial(scan_text_file, stream, listed, fmt, None, 1)
    with pytest.raises(SpecError, match=f"t.{fmt}: read {len(data)} bytes where the listing "
                                        f"found {listed}: the file changed"):
        named_errors(FileEntry(f"t.{fmt}", listed, 0), stream, read)
