"""A shard's account of its mini-batches: the tries given, what finished (counts), the first
error, and why the shard stops, once it does (a threshold crossed, init() failing everywhere,
an output it cannot write). The supervisor (execution.shard) keeps it as its workers report;
the shard's outcome is read from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prs_runner.execution.shard_outcome import Outcome
from prs_runner.execution.shard_work import ShardWork
from prs_runner.output.results import ErrorInfo
from prs_runner.step.thresholds import Counts, crossed_threshold

# Lately committed mini-batches a shard remembers the counts of: a thief takes only what it
# cannot see committed, which is what a worker held or committed in the last seconds.
RECENT_MOST = 4096


class ShardAccount:
    def __init__(self, spec: dict[str, Any], work: ShardWork) -> None:
        self.spec, self.work = spec, work
        self.tries: dict[int, int] = {}
        # Tried, not finished: what the report shows for them if the shard stops first.
        self.unfinished: dict[int, dict[str, Any]] = {}
        self.uncommitted: dict[int, int] = {}  # returned, then lost before their commit
        self.counts = Counts()
        # What this shard committed lately, by id: another shard may have taken one of them
        # while a worker here held it, and run it too. The owner under the marks counts it.
        self.recent: dict[int, Counts] = {}
        self.first_error: ErrorInfo | None = None
        self.first_error_raised = False
        self.stop_reason: tuple[str, str] | None = None

    def stop(self, reason: str, message: str) -> None:
        """The shard stops for REASON; the first reason given is the one it ends with."""
        if not self.stop_reason:
            self.stop_reason = (reason, message)

    def finish(self, mb_id: int, event: dict[str, Any]) -> None:
        """MB_ID is committed with EVENT's counts (a worker's 'done', or its header's)."""
        self.unfinished.pop(mb_id, None)
        self.work.committed(mb_id)
        self.count(mb_id, Counts(1, 0, event["succeeded"], event["failed"], event["rows"]))
        if event.get("item_error"):
            self.remember_error(event["item_error"], mb_id, raised=False)
        if event["failed"]:
            self.check_thresholds()

    def retry(self, mb_id: int, error: dict[str, Any], process: int) -> bool:
        """A try of MB_ID failed in worker PROCESS with ERROR: whether it runs again (tries
        left), else its failure is to be committed."""
        self.remember_error(error, mb_id)
        if self.tries[mb_id] < self.spec["runMaxTry"]:
            self.unfinished[mb_id] = {"tries": self.tries[mb_id], "process": process,
                                      "error": f"{error['type']}: {error['message']}"}
            return True
        self.unfinished.pop(mb_id, None)
        return False

    def remember_error(self, error: dict[str, Any], mb_id: int | None,
                       raised: bool = True) -> None:
        """The first error, for messages and the report; one that was RAISED (an exception,
        a dead worker) wins over an earlier one about items (skipped rows, fewer results:
        normal for scripts that return one row per partition)."""
        if self.first_error is not None and (self.first_error_raised or not raised):
            return
        items = self.work.mini_batch(mb_id).items if mb_id is not None else ()
        self.first_error = ErrorInfo(
            error["type"], error["message"], error.get("traceback", ""), mb_id, items[:5])
        self.first_error_raised = raised

    def count(self, mb_id: int, counts: Counts) -> None:
        """MB_ID, committed here, counts COUNTS, unless another shard owns it under the
        marks read (it counts it there), or turns out to later (disown)."""
        if not self.work.owns(mb_id):
            return
        self.counts += counts
        self.recent[mb_id] = counts
        if len(self.recent) > RECENT_MOST:
            del self.recent[next(iter(self.recent))]

    def disown(self, owns: Callable[[int], bool]) -> None:
        """Uncount what this shard committed lately but another owns under new marks (it
        ran there too): the shards' counts add up to each mini-batch once, as the merge
        counts it, and no threshold is crossed by a mini-batch counted twice."""
        for mb_id in [mb_id for mb_id in self.recent if not owns(mb_id)]:
            self.counts -= self.recent.pop(mb_id)

    def check_thresholds(self) -> None:
        why = crossed_threshold(self.counts, self.spec, self.work.total)
        if why:
            first = f"; first error: {self.first_error.one_line()}" if self.first_error else ""
            self.stop("ErrorThresholdExceeded", why + first)

    def outcome(self, requests: int, metrics_processes: list[int], processes: int,
                running: dict[int, int]) -> Outcome:
        """The shard's outcome now. RUNNING: each worker's mini-batch when it stopped (the
        head of its queue; the rest were only queued) and the worker's index."""
        if not self.stop_reason:
            return Outcome("succeeded", "", "", self.counts, self.first_error, requests,
                           metrics_processes=metrics_processes, processes=processes)
        reason, message = self.stop_reason
        unfinished = dict(self.unfinished)
        for mb_id, process in running.items():
            unfinished.setdefault(mb_id, {"tries": self.tries.get(mb_id, 0),
                                          "process": process, "error": ""})
        return Outcome("failed", reason, message, self.counts, self.first_error, requests,
                       unfinished, metrics_processes, processes)
