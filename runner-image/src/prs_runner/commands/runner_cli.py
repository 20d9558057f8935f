"""`prs-runner`: the commands a pod (or `prs run`) executes.

    prs-runner plan --code-root DIR [--termination-log PATH]       (step JSON in $PRS_STEP)
    prs-runner shard --plan URI --index I [--code-root DIR] [--termination-log PATH]
    prs-runner merge --plan URI [--termination-log PATH]
    prs-runner reuse --plan URI --from URI --from-step NAME [--termination-log PATH]

Live progress goes to $PRS_PROGRESS_URL when set (with $PRS_PROGRESS_TOKEN), best effort.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

from prs_runner.commands.os_errors import describe_os_error
from prs_runner.commands.termination_message import fit
from prs_runner.execution.processes import exit_now, kill_group, runner_gc
from prs_runner.execution.shard import ShardSupervisor
from prs_runner.execution.shard_outcome import EXIT_FATAL, emit
from prs_runner.execution.worker import preload_data_stack, read_spec
from prs_runner.planning.plan_store import PlanView, read_plan
from prs_runner.step.spec import SpecError

# Only what a shard needs is imported up front: a shard's start-up delays its workers'.
from prs_runner.storage.code_archive import unpack_code_root
from prs_runner.storage.filesystem import Storage
from prs_runner.storage.local_staging import STAGING_FOLDER

if TYPE_CHECKING:
    from prs_runner.execution.progress_report import ProgressPoster


def await_go(args: argparse.Namespace) -> bool:
    """`prs run` starts its shards first thing (execution.local_shards): (with --await-setup,
    read the index, whether to preload and the env to preload with), preload, then wait for
    the go line with the plan's URI. False: EOF, the run ended before it began."""
    # Ctrl-C reaches the whole terminal's group: `prs run` answers it and closes our stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.await_setup:
        line = sys.stdin.readline()
        if not line:
            return False
        setup = json.loads(line)
        args.index, args.preload = setup["index"], setup["preload"]
        os.environ.update(setup["env"])
    if args.preload:
        preload_data_stack()
    line = sys.stdin.readline()
    if not line:
        return False
    args.plan, args.await_plan = json.loads(line)["plan"], True  # --plan only named it
    return True


def run_shard(args: argparse.Namespace) -> int:
    if (args.await_go or args.await_setup) and not await_go(args):
        return 0
    if not args.plan:
        raise SystemExit("prs-runner shard: --plan is required (or --await-go)")
    # --await-plan: `prs run` starts shards while it still cuts the input; the resolved spec
    # is already in step.json next to where the plan will appear.
    plan = None if args.await_plan else PlanView(args.plan)
    spec = read_spec(args.plan) if plan is None else plan.header.step
    code_root = unpack_code_root(args.code_root or spec["code"].get("sourceDirectory") or "")
    supervisor = ShardSupervisor(spec, args.plan, args.index, code_root, plan)
    poster = progress_poster(os.environ)
    if poster is not None:
        supervisor.listeners.append(poster.offer)

    def stop(signum: int, _frame: FrameType | None) -> None:
        for slot in supervisor.slots:
            if slot.pid:
                kill_group(slot.pid)
        # What it knew when stopped (its first error, what was running) for the report; the
        # merge counts a stopped shard as not finished. Best effort: the exit comes first.
        with contextlib.suppress(BaseException):
            # The input and side inputs it downloaded go; the logs stay (no upload now).
            kept = supervisor.scratch.remove(keep=STAGING_FOLDER)
            if kept is not None:
                print(f"shard {args.index}: the logs of its workers are at {kept}",
                      file=sys.stderr, flush=True)
        with contextlib.suppress(BaseException):
            supervisor.account.stop("Stopped", "stopped")
            supervisor.read_unread()  # what the workers said before they were killed
            report = supervisor.outcome().to_dict(args.index) | {"status": "stopped"}
            Storage(spec["output"]["uri"]).write_atomic(f"_prs/shards/{args.index}.json",
                                                        json.dumps(report).encode())
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, supervisor.stops.handler(stop))
    signal.signal(signal.SIGINT, supervisor.stops.handler(stop))
    outcome = supervisor.run()
    report = outcome.to_dict(args.index)
    output = Storage(spec["output"]["uri"])
    output.write_atomic(f"_prs/shards/{args.index}.json", json.dumps(report).encode())
    emit(report | {"final": True})
    # The unfinished mini-batches are for the merge's report (it reads shards/<index>.json):
    # the operator needs the counts, and a termination message has 4 KiB.
    brief = {k: v for k, v in report.items() if k != "unfinished"}
    if poster is not None:
        poster.offer(brief | {"final": True})
        poster.close()
    write_termination_message(args.termination_log, brief)
    return 0 if outcome.status == "succeeded" else EXIT_FATAL


def progress_poster(env: dict[str, str] | os._Environ[str]) -> ProgressPoster | None:
    url = env.get("PRS_PROGRESS_URL")
    if not url:
        return None
    from prs_runner.execution.progress_report import ProgressPoster

    identity = {key: env.get(f"PRS_STEP_{key.upper()}", "") for key in ("namespace", "name", "uid")}
    return ProgressPoster(url, env.get("PRS_PROGRESS_TOKEN", ""), identity)


def run_plan(args: argparse.Namespace) -> int:
    from prs_runner.commands.pod_phases import plan_failure, plan_in_pod

    try:
        summary = plan_in_pod(json.loads(os.environ["PRS_STEP"]), args.code_root)
    except SpecError as error:
        write_termination_message(args.termination_log, plan_failure(error))
        print(error, file=sys.stderr)
        return EXIT_FATAL
    write_termination_message(args.termination_log, summary)
    print(json.dumps(summary))
    return 0


def run_reuse(args: argparse.Namespace) -> int:
    from prs_runner.commands.pod_phases import reuse_in_pod

    try:
        result = reuse_in_pod(args.plan, args.source, args.source_step)
    except (SpecError, FileNotFoundError) as error:
        write_termination_message(args.termination_log,
                                  {"reason": "ReuseFailed", "message": str(error)})
        print(error, file=sys.stderr)
        return EXIT_FATAL
    write_termination_message(args.termination_log, result)
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from prs_runner.output.merge import merge_results, read_shard_outcomes

    plan = read_plan(args.plan)
    output = Storage(plan.step["output"]["uri"])
    outcomes = read_shard_outcomes(output, plan.node_count)
    result = merge_results(plan, output, outcomes, started=args.started)
    write_termination_message(args.termination_log, result)
    print(json.dumps({k: result[k] for k in ("status", "reason", "message")}))
    return 0  # the merge did its work; the step's own outcome is in the message


def write_termination_message(path: str | None, message: dict[str, object]) -> None:
    """Valid JSON within the kubelet's 4 KiB: long texts are shortened, counts always fit."""
    if not path:
        return
    with open(path, "w") as stream:  # noqa: PTH123 (the kubelet's file, not user data)
        stream.write(fit(message))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="prs-runner")
    commands = root.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="plan the step in $PRS_STEP, prepare its output")
    plan.add_argument("--code-root", required=True)
    plan.add_argument("--termination-log")
    shard = commands.add_parser("shard", help="run one shard's mini-batches")
    shard.add_argument("--plan")
    shard.add_argument("--index", type=int, default=int(os.environ.get("JOB_COMPLETION_INDEX", 0)))
    shard.add_argument("--code-root")
    shard.add_argument("--await-plan", action="store_true",
                       help="start the workers now, wait for the plan (spec in step.json)")
    shard.add_argument("--await-go", action="store_true",
                       help="read the plan's URI from stdin first (`prs run`), then --await-plan")
    shard.add_argument("--preload", action="store_true",
                       help="with --await-go: import the data stack while waiting")
    shard.add_argument("--await-setup", action="store_true",
                       help="--await-go, with the index, preload and env from stdin first")
    shard.add_argument("--for", dest="step_file", help="the step file (names the process)")
    shard.add_argument("--termination-log")
    merge = commands.add_parser("merge", help="merge committed results, write the report")
    merge.add_argument("--plan", required=True)
    merge.add_argument("--started", type=float, default=None)
    merge.add_argument("--termination-log")
    reuse = commands.add_parser("reuse", help="copy an earlier step's identical result")
    reuse.add_argument("--plan", required=True)
    reuse.add_argument("--from", dest="source", required=True)
    reuse.add_argument("--from-step", dest="source_step", required=True)
    reuse.add_argument("--termination-log")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = {"plan": run_plan, "shard": run_shard, "merge": run_merge, "reuse": run_reuse}
    try:
        return commands[args.command](args)
    except OSError as error:
        # A full disk, a read-only or vanished output: one line, and the same text for the
        # operator in the termination message; a rerun resumes once it is fixed.
        message = describe_os_error(error)
        print(f"prs-runner {args.command}: {message}", file=sys.stderr)
        write_termination_message(args.termination_log,
                                  {"reason": "OutputUnwritable", "message": message})
        return EXIT_FATAL


def entry() -> None:
    """The console script: main(), then exit without the interpreter's teardown."""
    runner_gc()
    exit_now(main())


if __name__ == "__main__":
    entry()
