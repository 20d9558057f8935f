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
        writer.append(index, io.BytesIO(payload))
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
