"""What a finished mini-batch's record says (its header), and how an error is told.

Records are committed into commit logs (commit_log); the header is the part a resume and the
report read, the payload (the `append_row` bytes of the mini-batch) is what the merge copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


@dataclass  # not frozen: a resume or merge builds one per record, and frozen costs 2x
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
