"""The shard supervisors of `prs run`, as local processes: started early (their workers
import and init() while the input is cut), restarted when one crashes (up to
maxShardRetries), all stopped once the cross-shard counts cross a threshold."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import time
from typing import Any

from prs_runner.execution.processes import spawn_shard
from prs_runner.execution.progress import Progress
from prs_runner.execution.shard import EXIT_FATAL
from prs_runner.output.results import ErrorInfo
from prs_runner.step.thresholds import Counts, crossed_threshold


class ShardRunner:
    def __init__(self, spec: dict[str, Any], plan_path: str, progress: Progress) -> None:
        self.spec, self.plan_path, self.progress = spec, plan_path, progress
        self.node_count: int = spec["nodeCount"]
        self.total = 0
        self.retries = [0] * self.node_count
        self.counts = [Counts()] * self.node_count
        self.errors: list[ErrorInfo | None] = [None] * self.node_count
        self.selector = selectors.DefaultSelector()
        self.buffers: dict[int, bytes] = {}
        self.failure: tuple[str, str, str] | None = None
        limit = spec.get("activeDeadlineSeconds")
        self.deadline = time.monotonic() + limit if limit else None

    def start(self, shard: int) -> None:
        process = spawn_shard(["shard", "--plan", self.plan_path, "--index", str(shard),
                               "--await-plan"])
        assert process.stdout is not None
        self.selector.register(process.stdout, selectors.EVENT_READ, (shard, process))
        self.buffers[shard] = b""

    def start_all(self) -> None:
        for shard in range(self.node_count):
            self.start(shard)

    def run(self, total_mini_batches: int) -> tuple[str, str, str] | None:
        """Once the plan is written: follow the shards to their end."""
        self.total = total_mini_batches
        try:
            while self.selector.get_map():
                for key, _ in self.selector.select(1.0):
                    self.read(*key.data)
                self.check_deadline()
        finally:
            self.stop_all()
            self.progress.close()
        return self.failure

    def read(self, shard: int, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        chunk = os.read(process.stdout.fileno(), 1 << 16)
        if not chunk:
            self.selector.unregister(process.stdout)
            self.finished(shard, process.wait())
            return
        *lines, self.buffers[shard] = (self.buffers[shard] + chunk).split(b"\n")
        for line in lines:
            report = json.loads(line)
            self.counts[shard] = Counts.from_dict(report["counts"])
            self.errors[shard] = self.errors[shard] or ErrorInfo.from_dict(report["firstError"])
        total = sum(self.counts, Counts())
        self.progress.update(total)
        why = crossed_threshold(total, self.spec, self.total)
        if why and self.failure is None:
            self.failure = ("Failed", "ErrorThresholdExceeded", why + self.first_error_text())
            self.stop_all()

    def check_deadline(self) -> None:
        if self.deadline is None or time.monotonic() < self.deadline or self.failure:
            return
        done = sum(self.counts, Counts())
        finished = done.mini_batches_succeeded + done.mini_batches_failed
        self.failure = ("Failed", "DeadlineExceeded",
                        f"the step ran longer than activeDeadlineSeconds="
                        f"{self.spec['activeDeadlineSeconds']}; {finished}/{self.total} "
                        "mini-batches done (kept: run again to resume)")
        self.stop_all()

    def first_error_text(self) -> str:
        errors = [e for e in self.errors if e is not None]
        return f"; first error: {errors[0].one_line()}" if errors else ""

    def finished(self, shard: int, code: int) -> None:
        if code in (0, EXIT_FATAL) or self.failure:
            return
        if self.retries[shard] < self.spec["maxShardRetries"]:
            self.retries[shard] += 1
            self.start(shard)

    def stop_all(self) -> None:
        for key in list(self.selector.get_map().values()):
            _, process = key.data
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for key in list(self.selector.get_map().values()):
            _, process = key.data
            process.wait()
            self.selector.unregister(key.fileobj)
