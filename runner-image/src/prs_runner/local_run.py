"""`prs run`: plan, run every shard as a local supervisor process, enforce the thresholds
across shards, merge. The shards and the merge are the same code the pods run."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from prs_runner.fingerprint import compute_fingerprint
from prs_runner.merge import JOB_RESULT, merge_results, read_shard_outcomes
from prs_runner.planning import MiniBatch, Plan, plan_files, plan_from_json, plan_to_json
from prs_runner.processes import spawn_shard
from prs_runner.progress import Progress
from prs_runner.results import ErrorInfo, committed_ids
from prs_runner.shard import EXIT_FATAL
from prs_runner.spec import SpecError, Step
from prs_runner.storage import FileEntry, Storage
from prs_runner.thresholds import Counts, crossed_threshold

PLAN_FILE = "_prs/plan.json"


@dataclass(frozen=True)
class RunResult:
    result: dict[str, Any]
    reused: bool


def resolve_spec(step: Step) -> dict[str, Any]:
    """The spec with every local path made absolute, as the workers need it."""
    spec = json.loads(json.dumps(step.spec))
    code = spec["code"]
    if code.get("configMap"):
        raise SpecError(["spec.code.configMap: works only on a cluster; "
                         "prs run needs code.sourceDirectory or code.path"])
    for key in ("sourceDirectory", "path"):
        if code.get(key):
            code[key] = step.resolve_local(code[key])
    code["sourceDirectory"] = code.pop("path", None) or code["sourceDirectory"]
    spec["input"]["uri"] = step.resolve_local(spec["input"]["uri"])
    spec["output"]["uri"] = step.resolve_local(spec["output"]["uri"])
    for side in spec["sideInputs"]:
        side["uri"] = step.resolve_local(side["uri"])
    return spec  # type: ignore[no-any-return]


def read_code_files(root: str) -> list[tuple[str, bytes]]:
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for name in sorted(names):
            path = os.path.join(folder, name)
            with open(path, "rb") as stream:
                files.append((os.path.relpath(path, root), stream.read()))
    return files


def build_plan(step: Step) -> Plan:
    spec = resolve_spec(step)
    listing = Storage(spec["input"]["uri"]).list_files(spec["input"].get("glob"))
    if not listing:
        raise SpecError([f"spec.input.uri: no input files under {spec['input']['uri']}"
                         + (f" match glob {spec['input']['glob']!r}" if spec["input"].get("glob")
                            else "")])
    side_listings: dict[str, list[FileEntry]] = {}
    for side in spec["sideInputs"]:
        side_listings[side["name"]] = Storage(side["uri"]).list_files()
        if not side_listings[side["name"]]:
            raise SpecError([f"spec.sideInputs[{side['name']}].uri: nothing at {side['uri']}"])
    if spec["input"]["type"] == "tabular":
        spec["input"]["format"] = resolve_format(spec, listing)
    fingerprint = compute_fingerprint(
        spec, read_code_files(spec["code"]["sourceDirectory"]), listing, side_listings
    )
    input_root = input_folder(spec["input"]["uri"])
    return Plan(
        step_name=step.name, fingerprint=fingerprint, input_uri=input_root,
        node_count=spec["nodeCount"],
        mini_batches=tuple(plan_mini_batches(step, spec, input_root, listing)),
        step=spec, side_inputs={s["name"]: s["uri"] for s in spec["sideInputs"]},
    )


def input_folder(uri: str) -> str:
    """What the listed paths are relative to: the URI, or its folder when it is one file."""
    if Storage(uri).is_file():
        return uri.rstrip("/").rsplit("/", 1)[0] or "/"
    return uri


def resolve_format(spec: dict[str, Any], listing: list[FileEntry]) -> str:
    from prs_runner.tabular_planning import guess_format

    found = spec["input"].get("format") or guess_format(e.path for e in listing)
    if found is None:
        raise SpecError(["spec.input.format: cannot tell csv, parquet or jsonl from the file "
                         f"names under {spec['input']['uri']}; set input.format"])
    return str(found)


def plan_mini_batches(
    step: Step, spec: dict[str, Any], input_root: str, listing: list[FileEntry]
) -> list[MiniBatch]:
    size = step.mini_batch_size
    if spec["input"]["type"] != "tabular":
        assert size.count is not None  # validation: files take a count
        return plan_files(listing, size.count, spec["nodeCount"])
    from prs_runner.tabular_scan import plan_tabular

    return plan_tabular(Storage(input_root), listing, spec["input"]["format"], size,
                        spec["input"].get("partitionKeys") or [], spec["nodeCount"])


def earlier_result(output: Storage) -> dict[str, Any] | None:
    try:
        return json.loads(output.read_bytes(JOB_RESULT))  # type: ignore[no-any-return]
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def earlier_fingerprint(output: Storage) -> str | None:
    try:
        return plan_from_json(output.read_bytes(PLAN_FILE)).fingerprint
    except (FileNotFoundError, ValueError, KeyError):
        return None


def start_over(output: Storage, plan: Plan) -> None:
    output.delete("_prs")
    output.delete(plan.step["appendRowFileName"])


def prepare_output(plan: Plan, output: Storage, fresh: bool = False) -> dict[str, Any] | None:
    """Get the output ready for this plan: the earlier result when it can be reused as is;
    otherwise keep the committed results of the same plan (resume) or start over."""
    earlier = earlier_result(output)
    succeeded = earlier is not None and earlier.get("status") == "Succeeded"
    if succeeded and not fresh and plan.step["allowReuse"] and (
        earlier is not None and earlier.get("fingerprint") == plan.fingerprint
    ):
        return earlier
    if fresh or succeeded or earlier_fingerprint(output) != plan.fingerprint:
        start_over(output, plan)
    output.delete("_prs/shards")
    output.delete(JOB_RESULT)
    output.write_atomic(PLAN_FILE, plan_to_json(plan))
    return None


def run_local(step: Step, fresh: bool = False, stream: TextIO = sys.stderr) -> RunResult:
    started = time.time()
    plan = build_plan(step)
    output = Storage(plan.step["output"]["uri"])
    earlier = prepare_output(plan, output, fresh)
    if earlier is not None:
        return RunResult(earlier, reused=True)
    resumed = len(committed_ids(output))
    override = ShardRunner(plan, output.join(PLAN_FILE), Progress(stream, len(plan.mini_batches),
                                                                  resumed)).run()
    outcomes = read_shard_outcomes(output, plan.node_count)
    return RunResult(merge_results(plan, output, outcomes, started, override), reused=False)


class ShardRunner:
    """Runs the shard supervisors, restarts a crashed one up to maxShardRetries times, and
    stops them all once the cross-shard counts cross a threshold."""

    def __init__(self, plan: Plan, plan_path: str, progress: Progress) -> None:
        self.plan, self.plan_path, self.progress = plan, plan_path, progress
        self.retries = [0] * plan.node_count
        self.counts = [Counts()] * plan.node_count
        self.errors: list[ErrorInfo | None] = [None] * plan.node_count
        self.selector = selectors.DefaultSelector()
        self.buffers: dict[int, bytes] = {}
        self.failure: tuple[str, str, str] | None = None

    def start(self, shard: int) -> None:
        process = spawn_shard(["shard", "--plan", self.plan_path, "--index", str(shard)])
        assert process.stdout is not None
        self.selector.register(process.stdout, selectors.EVENT_READ, (shard, process))
        self.buffers[shard] = b""

    def run(self) -> tuple[str, str, str] | None:
        for shard in range(self.plan.node_count):
            self.start(shard)
        try:
            while self.selector.get_map():
                for key, _ in self.selector.select(1.0):
                    self.read(*key.data)
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
        why = crossed_threshold(total, self.plan.step, len(self.plan.mini_batches))
        if why and self.failure is None:
            self.failure = ("Failed", "ErrorThresholdExceeded", why + self.first_error_text())
            self.stop_all()

    def first_error_text(self) -> str:
        errors = [e for e in self.errors if e is not None]
        return f"; first error: {errors[0].one_line()}" if errors else ""

    def finished(self, shard: int, code: int) -> None:
        if code in (0, EXIT_FATAL) or self.failure:
            return
        if self.retries[shard] < self.plan.step["maxShardRetries"]:
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
