"""One committed record per finished mini-batch under `_prs/results/`.

A record is a JSON header line followed by the payload (the `append_row` bytes of the
mini-batch). Its name depends only on the mini-batch id and it is written with write-then-
rename, so a result exists whole or not at all, and never twice, however often it is retried.
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


def record_name(mini_batch_id: int) -> str:
    return f"{mini_batch_id:08d}.res"


def encode_record(header: ResultHeader, payload: bytes) -> bytes:
    # vars() rather than dataclasses.asdict(): the header is flat, and this runs per mini-batch
    return json.dumps(vars(header), separators=(",", ":")).encode() + b"\n" + payload


def commit_record(storage: Storage, header: ResultHeader, payload: bytes) -> None:
    storage.write_atomic(f"{RESULTS_DIR}/{record_name(header.id)}", encode_record(header, payload))


def read_header(stream: IO[bytes]) -> tuple[ResultHeader, int]:
    """The header and the payload's offset in the record."""
    line = stream.readline()
    return ResultHeader(**json.loads(line)), len(line)


def load_header(storage: Storage, mini_batch_id: int) -> ResultHeader | None:
    path = f"{RESULTS_DIR}/{record_name(mini_batch_id)}"
    try:
        with storage.open_read(path) as stream:
            return read_header(stream)[0]
    except FileNotFoundError:
        return None


def committed_ids(storage: Storage) -> set[int]:
    return {
        int(name[:-4])
        for name in storage.list_names(RESULTS_DIR)
        if name.endswith(".res") and name[:-4].isdigit()
    }
