"""One committed record per finished mini-batch under `_prs/results/`.

A record is a JSON header line followed by the payload (the `append_row` bytes of the
mini-batch). Its name depends only on the mini-batch id and it is written with write-then-
rename, so a result exists whole or not at all, and never twice, however often it is retried.

Write-then-rename is atomic against process crashes, not against power loss: without an
fsync a published name can point at an empty or short file. So a record carries its
payload's length, and a record whose header cannot be read or whose file is shorter than
the header says counts as not committed: its mini-batch runs again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import IO, Any

from prs_runner.storage.filesystem import Storage

RESULTS_DIR = "_prs/results"
SUCCEEDED = "succeeded"
FAILED = "failed"


@dataclass(frozen=True)
class ErrorInfo:
    type: str
    message: str
    traceback: str = ""
    mini_batch: int | None = None
    items: tuple[str, ...] = ()

    def one_line(self) -> str:
        where = f" in mini-batch {self.mini_batch}" if self.mini_batch is not None else ""
        items = f" (items: {', '.join(self.items[:3])}{', ...' if len(self.items) > 3 else ''})"
        return f"{self.type}: {self.message}{where}{items if self.items else ''}"

    @staticmethod
    def from_dict(data: dict[str, Any] | None) -> ErrorInfo | None:
        if not data:
            return None
        return ErrorInfo(**{**data, "items": tuple(data.get("items", ()))})


@dataclass(frozen=True)
class ResultHeader:
    id: int
    shard: int
    process: int
    tries: int
    items: int
    succeeded: int
    failed: int
    seconds: float
    status: str
    rows: int = 0
    error: dict[str, Any] | None = field(default=None)
    payload_bytes: int | None = None  # None: written before lengths were recorded


def record_name(mini_batch_id: int) -> str:
    return f"{mini_batch_id:08d}.res"


def encode_record(header: ResultHeader, payload: bytes) -> bytes:
    # vars() rather than dataclasses.asdict(): the header is flat, and this runs per mini-batch
    fields = {**vars(header), "payload_bytes": len(payload)}
    return json.dumps(fields, separators=(",", ":")).encode() + b"\n" + payload


class TornRecord(ValueError):
    """A record that was published but not fully written (see the module docstring)."""


def commit_record(storage: Storage, header: ResultHeader, payload: bytes) -> None:
    storage.write_atomic(f"{RESULTS_DIR}/{record_name(header.id)}", encode_record(header, payload))


def read_header(stream: IO[bytes], size: int) -> tuple[ResultHeader, int]:
    """The header and the payload's offset in a record of SIZE bytes; TornRecord when the
    header is unreadable or the payload is shorter than the header says."""
    line = stream.readline()
    try:
        header = ResultHeader(**json.loads(line)) if line.endswith(b"\n") else None
    except (ValueError, TypeError):
        header = None
    if header is None:
        raise TornRecord(f"unreadable header ({len(line)} bytes)")
    if header.payload_bytes is not None and size < len(line) + header.payload_bytes:
        raise TornRecord(f"{size} bytes, expected {len(line) + header.payload_bytes}")
    return header, len(line)


def load_header(storage: Storage, mini_batch_id: int) -> ResultHeader | None:
    """The committed header, or None when the mini-batch has no whole record."""
    path = f"{RESULTS_DIR}/{record_name(mini_batch_id)}"
    try:
        with storage.open_seekable(path) as stream:
            return read_header(stream, record_size(stream))[0]
    except (FileNotFoundError, TornRecord):
        return None


def record_size(stream: IO[bytes]) -> int:
    size = stream.seek(0, 2)
    stream.seek(0)
    return size


def committed_ids(storage: Storage) -> set[int]:
    return {
        int(name[:-4])
        for name in storage.list_names(RESULTS_DIR)
        if name.endswith(".res") and name[:-4].isdigit()
    }
