"""DataFrame results as csv and parquet append_row records, and their merge writers."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from prs_runner.output.append_row_output import CsvOutput, OutputMismatch, ParquetOutput, TextOutput
from prs_runner.output.row_encoding import encode_arrow, encode_csv, encode_result


class KeptOpen(io.BytesIO):
    """The writers close their sink; keep the bytes readable for the test."""

    def close(self) -> None:
        pass


def merged(writer_type: Any, payloads: list[bytes]) -> bytes:
    sink = KeptOpen()
    writer = writer_type(sink)
    for index, payload in enumerate(payloads):
        writer.append(index, payload)
    writer.close()
    return sink.getvalue()


@pytest.mark.parametrize(
    ("result", "columns", "count"),
    [
        (pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), ["a", "b"], 2),
        (pd.Series([1.5, 2.5], name="score"), ["score"], 2),
        ([1, 2, 3], ["result"], 3),
        ((), ["result"], 0),
    ],
)
def test_csv_and_arrow_encode_frames_and_lists(result: Any, columns: list[str], count: int
                                               ) -> None:
    payload, returned = encode_csv(result)
    assert returned == count
    assert list(pd.read_csv(io.BytesIO(payload)).columns) == columns
    payload, returned = encode_arrow(result)
    assert returned == count
    assert merged(ParquetOutput, [payload])[:4] == b"PAR1"


def test_text_encoding_is_the_default_azure_format() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert encode_result(frame, "text") == (b"1 x\n2 y\n", 2)


def test_csv_output_writes_one_header_and_keeps_order() -> None:
    parts = [pd.DataFrame({"a": [i, i + 1], "b": ["p", "q, r"]}) for i in (0, 2, 4)]
    payloads = [encode_csv(p)[0] for p in parts] + [b""]  # an empty record is skipped
    data = merged(CsvOutput, payloads)
    assert data.count(b"a,b\n") == 1
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(data)),
                                  pd.concat(parts, ignore_index=True))


def test_csv_output_rejects_other_columns_naming_both_mini_batches() -> None:
    payloads = [encode_csv(pd.DataFrame({"a": [1]}))[0], encode_csv(pd.DataFrame({"b": [1]}))[0]]
    with pytest.raises(OutputMismatch, match=r"mini-batch 1 .*'b'.* mini-batch 0 .*'a'"):
        merged(CsvOutput, payloads)


def test_parquet_output_reads_back_equal_in_order() -> None:
    parts = [pd.DataFrame({"id": [i, i + 1], "name": ["x", "y"]}) for i in (0, 2, 4)]
    data = merged(ParquetOutput, [encode_arrow(p)[0] for p in parts])
    table = pq.read_table(io.BytesIO(data))
    pd.testing.assert_frame_equal(table.to_pandas(), pd.concat(parts, ignore_index=True))


def test_parquet_output_rejects_a_schema_change_naming_both_mini_batches() -> None:
    payloads = [encode_arrow(pd.DataFrame({"a": [1]}))[0],
                encode_arrow(pd.DataFrame({"a": [1.5]}))[0]]
    with pytest.raises(OutputMismatch, match=r"mini-batch 1 .*double.* mini-batch 0 .*int64"):
        merged(ParquetOutput, payloads)


def test_parquet_output_without_rows_is_still_a_parquet_file() -> None:
    assert pq.read_table(io.BytesIO(merged(ParquetOutput, [b""]))).num_rows == 0


def test_text_output_concatenates() -> None:
    assert merged(TextOutput, [b"1\n", b"", b"2\n"]) == b"1\n2\n"


# What run() may return, and the exact bytes of each format


@pytest.mark.parametrize(
    ("result", "name"),
    [("a\nb", "str"), (b"ab", "bytes"), ({"a": 1}, "dict")],
    ids=["str", "bytes", "dict"],
)
@pytest.mark.parametrize("row_format", ["text", "csv", "parquet"])
def test_results_that_cannot_be_counted_per_item_are_rejected(result: Any, name: str,
                                                              row_format: str) -> None:
    with pytest.raises(TypeError) as raised:
        encode_result(result, row_format)
    assert str(raised.value) == (
        f"run() returned {name}; return a list, tuple, numpy array or DataFrame with one "
        "element per succeeded item"
    )


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ([1, "a b", 2.5], (b"1\na b\n2.5\n", 3)),
        ((), (b"", 0)),
        (pd.Series([3, 4], name="score"), (b"3\n4\n", 2)),
        (pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=[7, 9]), (b"1 x\n2 y\n", 2)),
        (pd.DataFrame({"a": []}), (b"", 0)),
    ],
    ids=["list", "empty", "series", "frame-no-header-no-index", "empty-frame"],
)
def test_text_records(result: Any, expected: tuple[bytes, int]) -> None:
    assert encode_result(result, "text") == expected


class Rows(list[Any]):
    """A user's own list type that happens to have a `to_csv`: still one line per element."""

    def to_csv(self, *args: Any, **kwargs: Any) -> str:
        raise AssertionError("only pandas objects are written as table rows")


def test_text_writes_only_pandas_objects_as_table_rows() -> None:
    assert encode_result(Rows([1, 2]), "text") == (b"1\n2\n", 2)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ([1, 2], (b"result\n1\n2\n", 2)),
        (pd.Series([1.5, 2.5]), (b"result\n1.5\n2.5\n", 2)),
        (pd.Series([1.5], name="score"), (b"score\n1.5\n", 1)),
        (pd.DataFrame({"a": [1, 2], "b": ["x", "y, z"]}, index=[7, 9]),
         (b'a,b\n1,x\n2,"y, z"\n', 2)),
    ],
    ids=["list", "unnamed-series", "named-series", "frame-without-index"],
)
def test_csv_records(result: Any, expected: tuple[bytes, int]) -> None:
    assert encode_result(result, "csv") == expected


def test_records_end_lines_with_a_newline_on_every_platform(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.setattr("os.linesep", "\r\n")  # as on Windows
    frame = pd.DataFrame({"a": [1, 2]})
    assert encode_result(frame, "text") == (b"1\n2\n", 2)
    assert encode_result(frame, "csv") == (b"a\n1\n2\n", 2)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (pd.DataFrame({"a": [1, 2]}, index=[7, 9]), {"a": [1, 2]}),
        (pd.DataFrame({"a": [1, 2, 3]}).iloc[1:], {"a": [2, 3]}),
        (pd.Series([1, 2], index=["x", "y"]), {"result": [1, 2]}),
        (pd.Series([1, 2], name="score"), {"score": [1, 2]}),
    ],
    ids=["frame-own-index", "frame-slice", "unnamed-series", "named-series"],
)
def test_parquet_records_keep_the_columns_and_drop_the_index(
    result: Any, expected: dict[str, list[int]]
) -> None:
    payload, count = encode_result(result, "parquet")
    table = pq.read_table(io.BytesIO(merged(ParquetOutput, [payload])))
    assert table.to_pydict() == expected
    assert count == 2


@pytest.mark.parametrize("columns", [["id", "text"], ["id", "te\rxt"]],
                         ids=["plain-header", "header-with-a-return"])
def test_a_carriage_return_in_a_value_is_quoted_and_reads_back(columns: list[str]) -> None:
    """pandas left a value holding a carriage return alone unquoted: pandas read the
    merged file back with a row too many, pyarrow failed on it."""
    import pyarrow.csv as pa_csv

    parts = [pd.DataFrame({columns[0]: [1, 2], columns[1]: ["a\rb", "c"]}),
             pd.DataFrame({columns[0]: [3], columns[1]: ["plain"]}),
             pd.DataFrame({columns[0]: [4], columns[1]: ["d\r"]})]
    data = merged(CsvOutput, [encode_csv(part)[0] for part in parts])
    expected = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(data)), expected)
    pd.testing.assert_frame_equal(pa_csv.read_csv(io.BytesIO(data)).to_pandas(), expected)

def test_a_frame_without_a_carriage_return_is_written_as_pandas_writes_it() -> None:
    frame = pd.DataFrame({"id": [3], "text": ["plain, text"]})
    assert encode_csv(frame)[0] == b'id,text\n3,"plain, text"\n'


def test_a_column_name_with_a_newline_is_one_header_for_every_mini_batch() -> None:
    """The header was taken up to its first newline: the rest of it came back as a row of
    every later mini-batch."""
    import pyarrow.csv as pa_csv

    parts = [pd.DataFrame({"multi\nline": [i], "plain": ["x"]}) for i in range(3)]
    data = merged(CsvOutput, [encode_csv(part)[0] for part in parts])
    expected = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(data)), expected)
    pd.testing.assert_frame_equal(pa_csv.read_csv(io.BytesIO(data)).to_pandas(), expected)
