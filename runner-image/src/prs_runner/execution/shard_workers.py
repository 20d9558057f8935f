"""A shard's worker processes: started (forked from the warmed-up supervisor, or exec'ed on
object storage), each with its environment, its log and its commit life, and retired whole.
The supervisor (execution.shard) decides when; this module does it.
"""

from __future__ import annotations

import functools
import os
import selectors
from collections import deque
from typing import Any

from prs_runner.execution.environment import worker_environment
from prs_runner.execution.processes import can_fork, fork_worker, kill_group, reap, spawn_worker
from prs_runner.execution.worker import preload, run_worker
from prs_runner.execution.worker_slot import Slot
from prs_runner.output.commit_log import life_name
from prs_runner.output.run_metrics import METRICS_MARK_ENV
from prs_runner.output.run_report_logs import metrics_mark
from prs_runner.step.uris import uses_object_storage
from prs_runner.storage.download_cache import fetch_side_inputs
from prs_runner.storage.local_staging import LocalStaging
from prs_runner.storage.scratch import SCRATCH_ENV


class WorkerProcesses:
    """The worker processes of one shard, one per Slot; their event pipes in `selector`."""

    def __init__(self, spec: dict[str, Any], plan_uri: str, index: int, code_root: str,
                 staging: LocalStaging) -> None:
        self.spec, self.plan_uri, self.index, self.code_root = spec, plan_uri, index, code_root
        self.staging = staging
        self.scratch = staging.scratch
        self.selector = selectors.DefaultSelector()  # their event pipes; data: the Slot
        # The AWS, Azure and Google clients inside pyarrow are not fork-safe: a worker forked
        # after this process used one dies of SIGSEGV. Steps on object storage exec theirs.
        self.fork = can_fork() and not uses_object_storage(spec)
        self.side_paths: dict[str, str] | None = None
        self.earlier_marks: set[str] | None = None  # metric marks uploaded by earlier runs

    def warm_up(self) -> None:
        """When workers are forked from this process: give it the step's env, then the
        imports every worker needs, once (not once per worker)."""
        if not self.fork:
            return
        for item in self.spec["env"]:
            os.environ[item["name"]] = str(item.get("value", ""))
        preload(self.spec)

    def start(self, slot: Slot) -> None:
        """A new life of SLOT's worker, with nothing sent to it yet."""
        slot.life = life_name(self.index, str(slot.index))
        env = self.environment(slot.index) | {
            "PRS_COMMIT_LIFE": slot.life,
            METRICS_MARK_ENV: self.staging.path(metrics_mark(self.index, slot.index))}
        log = self.staging.path(f"_prs/logs/{self.index}/{slot.index}.log")
        if self.fork:
            slot.pid, slot.commands, slot.events = fork_worker(
                functools.partial(run_worker, self.plan_uri, self.index, slot.index,
                                  self.code_root), env, log)
        else:
            slot.pid, slot.commands, slot.events = spawn_worker(
                self.plan_uri, self.index, slot.index, self.code_root, env, log)
        slot.ready, slot.buffer, slot.queue, slot.ran = False, bytearray(), deque(), set()
        slot.told, slot.read_early = 0, set()
        self.selector.register(slot.events, selectors.EVENT_READ, slot)

    def environment(self, process: int) -> dict[str, str]:
        if self.side_paths is None:  # once, before the first worker starts
            self.side_paths = fetch_side_inputs(self.spec["sideInputs"],
                                                functools.partial(self.scratch.folder, "side"))
        env = worker_environment(self.spec, self.index, process, self.code_root,
                                 side_input_paths=self.side_paths,
                                 output_dir=self.staging.output_dir())
        if uses_object_storage(self.spec):  # a worker's downloads: removed with the shard's
            env[SCRATCH_ENV] = self.scratch.folder("workers")
        return env

    def retire(self, slot: Slot) -> None:
        """Kill SLOT's worker (and what its script started), reap it, close its pipes."""
        self.selector.unregister(slot.events)
        for fd in (slot.events, slot.commands):
            os.close(fd)
        kill_group(slot.pid)
        reap(slot.pid)
        # Gone: its descriptors' numbers and its pid may be another's from now on.
        slot.pid, slot.commands, slot.events = 0, -1, -1
        slot.queue, slot.ran, slot.ready, slot.said = deque(), set(), False, False
        slot.commands_sent = []
        slot.told, slot.read_early = 0, set()

    def logged_metrics(self, processes: int) -> list[int]:
        """Of its PROCESSES workers, those whose logs hold Azure Run metrics, of this run or
        an earlier one over the same output: those with a mark (run_report_logs)."""
        output = self.staging.output
        if self.earlier_marks is None:  # on an object store, one listing per shard
            self.earlier_marks = set() if output.local is not None else set(
                output.list_names(f"_prs/logs/{self.index}"))  # staged: this run's
        return [p for p in range(processes)
                if f"{p}.metrics" in self.earlier_marks
                or os.path.exists(self.staging.path(metrics_mark(self.index, p)))]
