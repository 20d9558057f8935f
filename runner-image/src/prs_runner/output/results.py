"""What a finished mini-batch's record says (its header), and how an error is told.

Records are committed into commit logs (commit_log); the header is the part a resume and the
report read, the payload (the `append_row` bytes of the mini-batch) is what the merge copies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUCCEEDED = "succeeded"
FAILED = "failed"


# Errors about items of a mini-batch that ran (it is not failed): an exception that failed a
# mini-batch says more, so it is the "first error" wherever there is one.
ITEM_ERRORS = frozenset({"FewerResults", "CSVParseError"})
RUNNER_FOLDER = str(Path(__file__).resolve().parents[1]) + "/"
TRACEBACK_FRAME = re.compile(r'^  File "([^"]*)", line (\d+), in (.+)$', re.MULTILINE)


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
        return f"{self.type}: {self.message}{where}{items if self.items else ''}{self.raised_at()}"

    def raised_at(self) -> str:
        """' at score.py:12 in run': the traceback's innermost frame, so a one-line status
        still says where the script failed; '' without a traceback."""
        frames = [f for f in TRACEBACK_FRAME.findall(self.traceback)
                  if not f[0].startswith(("<", RUNNER_FOLDER))]  # the script's, not ours
        if not frames:
            return ""
        path, line, function = frames[-1]
        return f" at {path.rsplit('/', 1)[-1]}:{line} in {function}"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback,
                "miniBatch": self.mini_batch, "items": list(self.items)}

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
    started: float | None = None  # the try's start, Unix seconds; None: recorded before starts


def first_of(errors: Iterable[ErrorInfo | None]) -> ErrorInfo | None:
    """The first error that was raised, else the first about items; None without any."""
    present = [e for e in errors if e is not None]
    raised = [e for e in present if e.type not in ITEM_ERRORS]
    chosen = raised or present
    return chosen[0] if chosen else None
