"""What run() returned, as the bytes of its mini-batch's `append_row` record.

text: Azure's format, `str(element)` per line, DataFrame rows space-separated, no header.
csv: the DataFrame as CSV with its header line; the merge keeps the first header only.
parquet: an Arrow IPC stream of the DataFrame; the merge writes them into one Parquet file.
A list, tuple or array becomes a one-column frame (column `result`) for csv and parquet.
"""

from __future__ import annotations

from typing import Any

from prs_runner.output.append_row_output import first_record_end


def is_frame(result: Any) -> bool:
    return type(result).__module__.startswith("pandas") and hasattr(result, "to_csv")


def count_returned(result: Any) -> int:
    """Elements returned (one per succeeded item); rejects what cannot be counted so."""
    if isinstance(result, str | bytes | dict):
        raise TypeError(
            f"run() returned {type(result).__name__}; return a list, tuple, numpy array or "
            "DataFrame with one element per succeeded item"
        )
    return len(result)


def encode_text(result: Any) -> tuple[bytes, int]:
    """Azure's text append_row: str(element) per line; DataFrame rows space-separated."""
    count_returned(result)
    if is_frame(result):
        text = result.to_csv(sep=" ", header=False, index=False, lineterminator="\n")
        return text.encode(), len(result)
    lines = [str(element) for element in result]
    return ("\n".join(lines) + "\n").encode() if lines else b"", len(lines)


def as_frame(result: Any) -> Any:
    import pandas as pd

    if isinstance(result, pd.DataFrame):
        return result
    if isinstance(result, pd.Series):
        return result.to_frame(name=result.name if result.name is not None else "result")
    return pd.DataFrame({"result": list(result)})


def encode_csv(result: Any) -> tuple[bytes, int]:
    count_returned(result)
    frame = as_frame(result)
    text = frame.to_csv(index=False, lineterminator="\n").encode()  # pragma: no mutate: as below
    if b"\r" in text:  # memchr: the usual frame has none
        text = quoting_returns(frame, text)
    return text, len(frame)


def quoting_returns(frame: Any, text: bytes) -> bytes:
    """FRAME's CSV TEXT where a value holds a carriage return. pandas quotes a field
    holding the line end ("\n") but not one holding a carriage return alone, which CSV
    readers end a line at too (pyarrow and pandas read the rows wrong, or fail). So every
    text field of the rows is quoted (numbers stay bare), and the header is the usual one
    (the merge keeps the first mini-batch's and wants the same from each), unless it holds
    one too."""
    import csv

    # index=None writes no index either, and lineterminator=None is "\n" on POSIX
    quoted = frame.to_csv(index=False, lineterminator="\n",  # pragma: no mutate: the same
                          quoting=csv.QUOTE_NONNUMERIC).encode()
    header = text[:first_record_end(text)]
    if b"\r" in header:
        return quoted  # type: ignore[no-any-return]
    return header + quoted[first_record_end(quoted):]  # type: ignore[no-any-return]


def encode_arrow(result: Any) -> tuple[bytes, int]:
    import pyarrow as pa

    count_returned(result)
    frame = as_frame(result)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes(), len(frame)


ENCODERS = {"text": encode_text, "csv": encode_csv, "parquet": encode_arrow}


def encode_result(result: Any, row_format: str) -> tuple[bytes, int]:
    return ENCODERS[row_format](result)
