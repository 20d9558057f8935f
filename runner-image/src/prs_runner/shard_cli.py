"""`prs-runner`: the commands a pod (or `prs run`) executes.

    prs-runner shard --plan URI --index I [--code-root DIR] [--termination-log PATH]
    prs-runner merge --plan URI [--termination-log PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from types import FrameType

from prs_runner.merge import merge_results, read_shard_outcomes
from prs_runner.planning import Plan, plan_from_json
from prs_runner.processes import kill_group
from prs_runner.shard import EXIT_FATAL, ShardSupervisor, emit
from prs_runner.storage import Storage


def load_plan(plan_uri: str) -> tuple[Plan, Storage]:
    folder, name = plan_uri.rsplit("/", 1)
    storage = Storage(folder)
    return plan_from_json(storage.read_bytes(name)), storage


def run_shard(args: argparse.Namespace) -> int:
    plan, _ = load_plan(args.plan)
    code_root = args.code_root or plan.step["code"].get("sourceDirectory") or ""
    supervisor = ShardSupervisor(plan, args.plan, args.index, code_root)

    def stop(signum: int, _frame: FrameType | None) -> None:
        for slot in supervisor.slots:
            if slot.pid:
                kill_group(slot.pid)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    outcome = supervisor.run()
    report = outcome.to_dict(args.index)
    output = Storage(plan.step["output"]["uri"])
    output.write_atomic(f"_prs/shards/{args.index}.json", json.dumps(report).encode())
    emit(report | {"final": True})
    write_termination_message(args.termination_log, report)
    return 0 if outcome.status == "succeeded" else EXIT_FATAL


def run_merge(args: argparse.Namespace) -> int:
    plan, _ = load_plan(args.plan)
    output = Storage(plan.step["output"]["uri"])
    outcomes = read_shard_outcomes(output, plan.node_count)
    result = merge_results(plan, output, outcomes, started=args.started)
    write_termination_message(args.termination_log, result)
    return 0 if result["status"] == "Succeeded" else 1


def write_termination_message(path: str | None, message: dict[str, object]) -> None:
    """Kubernetes keeps at most 4 KiB of it; tracebacks are trimmed, counts always fit."""
    if not path:
        return
    text = json.dumps(message)
    first_error = message.get("firstError")
    if len(text) > 4000 and isinstance(first_error, dict):
        error = dict(first_error)
        error["traceback"] = str(error.get("traceback", ""))[-1500:]
        text = json.dumps({**message, "firstError": error})[:4000]
    with open(path, "w") as stream:
        stream.write(text)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="prs-runner")
    commands = root.add_subparsers(dest="command", required=True)
    shard = commands.add_parser("shard", help="run one shard's mini-batches")
    shard.add_argument("--plan", required=True)
    shard.add_argument("--index", type=int, default=int(os.environ.get("JOB_COMPLETION_INDEX", 0)))
    shard.add_argument("--code-root")
    shard.add_argument("--termination-log")
    merge = commands.add_parser("merge", help="merge committed results, write the report")
    merge.add_argument("--plan", required=True)
    merge.add_argument("--started", type=float, default=None)
    merge.add_argument("--termination-log")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_shard(args) if args.command == "shard" else run_merge(args)


if __name__ == "__main__":
    sys.exit(main())
