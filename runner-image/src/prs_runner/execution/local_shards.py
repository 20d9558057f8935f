"""The shard supervisors of `prs run`, as local processes: started first thing, restarted
when one crashes (up to maxShardRetries), all stopped once the cross-shard counts cross a
threshold.

A shard starts before `prs run` has surveyed its input: it imports what it needs (the data
stack too, for a tabular step whose workers it forks) and waits for one line on its stdin,
the go, which carries the plan's URI once the output is locked and cleared. Only then does
it read the output, start its workers (they import and init() while the input is cut) and
wait for the plan. An EOF instead of the go: the run ended before it began (an error in
the spec, a result reused, the output in use), and the shard exits having touched nothing."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from prs_runner.execution.processes import spawn_shard
from prs_runner.execution.progress import Progress
from prs_runner.execution.shard_outcome import EXIT_FATAL
from prs_runner.output.results import ErrorInfo, first_of
from prs_runner.planning.plan_store import PLAN_FILE
from prs_runner.step.spec import Step
from prs_runner.step.thresholds import SUM_CONFIRM_SECONDS, Counts, shards_crossed
from prs_runner.step.uris import uses_object_storage

MEANWHILE_SECONDS = 0.1


def start_shards(step: Step, stream: TextIO = sys.stderr,
                 standby: subprocess.Popen[bytes] | None = None) -> ShardRunner:
    """`prs run`'s shard processes, started before anything else (they await the go);
    STANDBY, started by `prs` before its own imports, becomes shard 0."""
    output_uri = step.resolve_local(step.spec["output"]["uri"]).rstrip("/")
    runner = ShardRunner(step.spec, Progress(stream, 0, 0), f"{output_uri}/{PLAN_FILE}")
    runner.standby = standby
    runner.start_all()
    return runner


class ShardRunner:
    def __init__(self, spec: dict[str, Any], progress: Progress, named: str = "") -> None:
        """SPEC: the step's, as loaded (its URIs not resolved yet); NAMED: the plan's URI as
        far as it is known before the survey, on each shard's command line (for `ps`)."""
        self.spec, self.progress, self.named = spec, progress, named
        self.plan_path: str | None = None  # given with the go
        self.node_count: int = spec["nodeCount"]
        self.total = 0
        self.retries = [0] * self.node_count
        self.counts = [Counts()] * self.node_count
        self.errors: list[ErrorInfo | None] = [None] * self.node_count
        self.selector = selectors.DefaultSelector()
        self.buffers: dict[int, bytes] = {}
        self.waiting: dict[int, subprocess.Popen[bytes]] = {}  # started, not given the go
        self.standby: subprocess.Popen[bytes] | None = None  # started without its setup
        self.failure: tuple[str, str, str] | None = None
        self.crossed: tuple[float, str] | None = None  # since when, and which threshold
        self.deadline: float | None = None
        # Workers forked from the shard inherit its imports: for a tabular step, the data
        # stack is imported while `prs run` surveys, with the step's env (numpy reads it).
        self.preload = spec["input"]["type"] == "tabular" and not uses_object_storage(spec)

    def start(self, shard: int) -> None:
        env = None
        if self.preload:
            env = {e["name"]: str(e.get("value", "")) for e in self.spec["env"]}
        process, self.standby = self.standby, None
        if process is not None:  # its setup, as the others get it on their command line
            setup = {"index": shard, "preload": self.preload, "env": env or {}}
            self.write_line(process, setup)
        else:
            args = ["shard", "--index", str(shard), "--await-go",
                    *(["--preload"] * self.preload),
                    *(["--plan", self.named] if self.named else [])]
            process = spawn_shard(args, None if env is None else os.environ | env,
                                  stdin=subprocess.PIPE)
        assert process.stdout is not None
        self.selector.register(process.stdout, selectors.EVENT_READ, (shard, process))
        self.buffers[shard] = b""
        self.waiting[shard] = process
        if self.plan_path is not None:  # a restart
            self.go_to(shard)

    def start_all(self) -> None:
        for shard in range(self.node_count):
            self.start(shard)

    def go(self, spec: dict[str, Any], plan_path: str) -> None:
        """The output is this run's: the shards may start on it (SPEC: resolved)."""
        self.spec, self.plan_path = spec, plan_path
        limit = spec.get("activeDeadlineSeconds")
        self.deadline = time.monotonic() + limit if limit else None
        for shard in list(self.waiting):
            self.go_to(shard)

    def go_to(self, shard: int) -> None:
        process = self.waiting.pop(shard)
        assert process.stdin is not None
        self.write_line(process, {"plan": self.plan_path})
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()

    @staticmethod
    def write_line(process: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
        # A shard that died before reading it shows as a failed shard when its EOF is read.
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(json.dumps(message).encode() + b"\n")
            process.stdin.flush()

    def cancel(self) -> None:
        """The run ends before the go: each shard sees EOF and exits, having done nothing."""
        for process in self.waiting.values():
            assert process.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        for process in self.waiting.values():
            process.wait()
            assert process.stdout is not None
            self.selector.unregister(process.stdout)
            process.stdout.close()
        self.waiting.clear()

    def run(self, total_mini_batches: int,
            meanwhile: Callable[[], None] | None = None) -> tuple[str, str, str] | None:
        """Once the plan is written: follow the shards to their end; MEANWHILE, if given,
        every MEANWHILE_SECONDS (the merge's reading, while a core is mostly idle)."""
        self.total = total_mini_batches
        due = time.monotonic() + MEANWHILE_SECONDS
        try:
            while self.selector.get_map():
                wait = min(max(due - time.monotonic(), 0.0), 1.0) if meanwhile else 1.0
                for key, _ in self.selector.select(wait):
                    self.read(*key.data)
                self.check_deadline()
                self.check_crossed()
                if meanwhile is not None and time.monotonic() >= due:
                    meanwhile()
                    due = time.monotonic() + MEANWHILE_SECONDS
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
            self.errors[shard] = ErrorInfo.from_dict(report["firstError"]) or self.errors[shard]
        self.progress.update(sum(self.counts, Counts()))
        why, alone = shards_crossed(self.counts, self.spec, self.total)
        if not why:
            self.crossed = None
        elif alone:
            self.crossed = (float("-inf"), why)  # one shard's counts: believed at once
        else:
            self.crossed = (self.crossed[0] if self.crossed else time.monotonic(), why)
        self.check_crossed()

    def check_crossed(self) -> None:
        """Stop the step once a threshold is crossed: at once by one shard's counts, after
        SUM_CONFIRM_SECONDS by their sum only: a mini-batch that two shards ran is counted by
        both until the one that lost it reads the steal mark (every BALANCE_SECONDS at
        most). Whatever the shards count, the merge counts each mini-batch once and fails
        the step on a threshold all the same."""
        if self.crossed is None or self.failure is not None:
            return
        since, why = self.crossed
        if time.monotonic() - since >= SUM_CONFIRM_SECONDS:
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
        error = first_of(self.errors)
        return f"; first error: {error.one_line()}" if error is not None else ""

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
