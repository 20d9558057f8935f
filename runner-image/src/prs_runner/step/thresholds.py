"""Counts of finished work and the three error thresholds of docs/contract.md §3. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# How long a threshold crossed only by the sum of the shards' counts must stay crossed to
# stop a step: a mini-batch two shards ran counts in both until the one that lost it to a
# steal mark reads the mark, which a shard does every 0.5 s (execution.steals).
SUM_CONFIRM_SECONDS = 1.0


@dataclass(frozen=True)
class Counts:
    mini_batches_succeeded: int = 0
    mini_batches_failed: int = 0
    items_succeeded: int = 0
    items_failed: int = 0
    rows: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.mini_batches_succeeded + other.mini_batches_succeeded,
            self.mini_batches_failed + other.mini_batches_failed,
            self.items_succeeded + other.items_succeeded,
            self.items_failed + other.items_failed,
            self.rows + other.rows,
        )

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.mini_batches_succeeded - other.mini_batches_succeeded,
            self.mini_batches_failed - other.mini_batches_failed,
            self.items_succeeded - other.items_succeeded,
            self.items_failed - other.items_failed,
            self.rows - other.rows,
        )

    @property
    def mini_batches_done(self) -> int:
        return self.mini_batches_succeeded + self.mini_batches_failed

    def to_dict(self) -> dict[str, int]:
        return {
            "miniBatchesSucceeded": self.mini_batches_succeeded,
            "miniBatchesFailed": self.mini_batches_failed,
            "itemsSucceeded": self.items_succeeded,
            "itemsFailed": self.items_failed,
            "rows": self.rows,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Counts:
        return Counts(
            data.get("miniBatchesSucceeded", 0),
            data.get("miniBatchesFailed", 0),
            data.get("itemsSucceeded", 0),
            data.get("itemsFailed", 0),
            data.get("rows", 0),
        )


def crossed_threshold(counts: Counts, spec: dict[str, Any], total_mini_batches: int) -> str | None:
    """Why the step must stop now, or None. -1 (and 100 %) disable a check."""
    error_threshold = spec["errorThreshold"]
    if error_threshold >= 0 and counts.items_failed > error_threshold:
        return (
            f"errorThreshold exceeded: {counts.items_failed} failed items > "
            f"errorThreshold {error_threshold}"
        )
    batch_threshold = spec["miniBatchErrorThreshold"]
    if batch_threshold >= 0 and counts.mini_batches_failed > batch_threshold:
        return (
            f"miniBatchErrorThreshold exceeded: {counts.mini_batches_failed} failed mini-batches > "
            f"miniBatchErrorThreshold {batch_threshold}"
        )
    percent = spec["allowedFailedPercent"]
    if percent < 100 and total_mini_batches > 0:
        share = 100.0 * counts.mini_batches_failed / total_mini_batches
        if share > percent:
            return (
                f"allowedFailedPercent exceeded: {counts.mini_batches_failed} of "
                f"{total_mini_batches} mini-batches failed ({share:.1f}% > {percent}%)"
            )
    return None


def shards_crossed(each: Sequence[Counts], spec: dict[str, Any], total_mini_batches: int
                   ) -> tuple[str | None, bool]:
    """Why the sum of the shards' counts EACH crosses a threshold (None: it does not), and
    whether one shard's own counts do. A shard counts each mini-batch once; their sum may
    count one two shards ran twice until the one that lost it to a steal mark reads the
    mark (SUM_CONFIRM_SECONDS), so a crossing by the sum alone is believed only later."""
    why = crossed_threshold(sum(each, Counts()), spec, total_mini_batches)
    return why, why is not None and any(
        crossed_threshold(one, spec, total_mini_batches) for one in each)
