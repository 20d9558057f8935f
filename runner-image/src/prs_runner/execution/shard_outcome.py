"""What a shard ends with: its outcome, in `_prs/shards/<index>.json`, in its progress
reports and in its pod's termination message."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

from prs_runner.output.results import ErrorInfo, ResultHeader
from prs_runner.step.thresholds import Counts

EXIT_FATAL = 3  # a shard's exit code: do not retry it (threshold crossed, init() keeps failing)


@dataclass
class Outcome:
    status: str  # succeeded | failed
    reason: str = ""
    message: str = ""
    counts: Counts = field(default_factory=Counts)
    first_error: ErrorInfo | None = None
    storage_requests: int = 0  # object-store calls of the shard and its workers
    # A stopped shard's mini-batches that were tried but have no result: id -> tries, the
    # process of the last try and its error (the report's row for them).
    unfinished: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Its workers that logged metrics through Azure's Run: the merge reads only their logs.
    metrics_processes: list[int] = field(default_factory=list)
    processes: int = 0  # its worker processes (processCountPerNode, or one per usable CPU)

    def to_dict(self, shard: int) -> dict[str, Any]:
        return {
            "shard": shard, "status": self.status, "reason": self.reason,
            "message": self.message, "counts": self.counts.to_dict(),
            "storageRequests": self.storage_requests,
            "firstError": self.first_error.__dict__ if self.first_error else None,
            "unfinished": {str(mb_id): info for mb_id, info in sorted(self.unfinished.items())},
            "metricsLogged": self.metrics_processes,
            "processes": self.processes,
        }


def counts_of(header: ResultHeader) -> Counts:
    return Counts(1, 0, header.succeeded, header.failed, header.rows)


def emit(message: dict[str, Any]) -> None:
    """A progress report or the outcome, as one JSON line on stdout (`prs run` reads it)."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()
