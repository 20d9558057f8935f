"""The merged `append_row` file, one writer per appendRowFormat. Each takes the committed
payloads in mini-batch order and holds at most one mini-batch in memory."""

from __future__ import annotations

from typing import IO, Any


class OutputMismatch(Exception):
    """Two mini-batches returned frames that cannot share one csv or parquet file."""


class TextOutput:
    """Azure's text format: the payloads are already its lines; concatenate them."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink

    def append(self, mini_batch: int, payload: bytes) -> None:
        self.sink.write(payload)

    def close(self) -> None:
        self.sink.close()


class CsvOutput(TextOutput):
    """Every payload starts with its header line; the file gets the first one, once."""

    def __init__(self, sink: IO[bytes]) -> None:
        super().__init__(sink)
        self.header: bytes | None = None
        self.header_from = -1

    def append(self, mini_batch: int, payload: bytes) -> None:
        end = first_record_end(payload)
        header = payload[:end]
        if not header:
            return
        if self.header is None:
            self.header, self.header_from = header, mini_batch
            self.sink.write(header)
        elif header != self.header:
            raise OutputMismatch(
                f"appendRowFormat csv: mini-batch {mini_batch} returned columns "
                f"{header.decode(errors='replace').strip()!r} but mini-batch "
                f"{self.header_from} returned {self.header.decode(errors='replace').strip()!r}"
            )
        super().append(mini_batch, payload[end:])


def first_record_end(data: bytes) -> int:
    """Where CSV DATA's first record ends: past its first newline outside quotes (a column
    name may hold one, quoted); the whole of DATA when none does."""
    newline = data.find(b"\n")
    while newline >= 0:
        if data.count(b'"', 0, newline) % 2 == 0:
            return newline + 1
        newline = data.find(b"\n", newline + 1)
    return len(data)


class ParquetOutput:
    """Arrow IPC payloads into one Parquet file (a row group or more per mini-batch)."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.writer: Any = None
        self.schema_from = -1

    def append(self, mini_batch: int, payload: bytes) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        data = payload
        if not data:
            return
        table = pa.ipc.open_stream(data).read_all()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.sink, table.schema)
            self.schema_from = mini_batch
        elif not table.schema.equals(self.writer.schema, check_metadata=False):
            raise OutputMismatch(
                f"appendRowFormat parquet: mini-batch {mini_batch} returned schema "
                f"({describe_schema(table.schema)}) but mini-batch {self.schema_from} returned "
                f"({describe_schema(self.writer.schema)}); return the same columns and types "
                "from every run() (cast them)"
            )
        self.writer.write_table(table)

    def close(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is None:
            pq.write_table(pa.table({}), self.sink)
        else:
            self.writer.close()
        self.sink.close()


def describe_schema(schema: Any) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)


AppendRowOutput = TextOutput | ParquetOutput


def open_output(row_format: str, sink: IO[bytes]) -> AppendRowOutput:
    writers: dict[str, type[AppendRowOutput]] = {
        "text": TextOutput, "csv": CsvOutput, "parquet": ParquetOutput}
    return writers[row_format](sink)
