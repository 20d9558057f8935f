"""`prs`: run, validate and plan ParallelRunSteps on this machine, or submit them to a cluster."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from prs_runner.execution.processes import exit_now
from prs_runner.step.spec import SpecError
from prs_runner.step.validation import load_step


def print_summary(name: str, result: dict[str, Any], reused: bool) -> None:
    batches, items, output = result["miniBatches"], result["items"], result["output"]
    status = result["status"]
    head = f"{status}: {name}"
    if result["status"] == "Failed":
        head += f" ({result['reason']}): {result['message']}"
    lines = [head]
    if reused:
        lines.append(f"  reused the result of an earlier identical run ({result['fingerprint']});"
                     " run() was not called (--fresh runs it again)")
    lines += [
        f"  mini-batches: {batches['succeeded']} succeeded, {batches['failed']} failed, "
        f"{batches['pending']} not run ({batches['total']} total)",
        f"  items: {items['succeeded']} succeeded, {items['failed']} failed "
        f"({items['total']} total)",
        f"  duration: {result['durationSeconds']} s",
    ]
    root = output["uri"].rstrip("/")
    if output.get("file"):
        lines.append(f"  output: {root}/{output['file']} ({output['rows']} rows)")
    lines.append(f"  report: {root}/_prs/report/")
    print("\n".join(lines))


def command_run(args: argparse.Namespace) -> int:
    from prs_runner.execution.local_run import run_local

    step = load_step(args.step, args.set or [], args.output)
    outcome = run_local(step, fresh=args.fresh)
    print_summary(step.name, outcome.result, outcome.reused)
    return 0 if outcome.result["status"] == "Succeeded" else 1


def command_validate(args: argparse.Namespace) -> int:
    step = load_step(args.step, args.set or [])
    print(f"{args.step}: valid ParallelRunStep {step.name!r}")
    return 0


def command_plan(args: argparse.Namespace) -> int:
    from prs_runner.execution.local_run import build_plan
    from prs_runner.planning.plan import describe_plan

    plan = build_plan(load_step(args.step, args.set or [], args.output))
    print("\n".join(describe_plan(plan)))
    return 0


def command_submit(args: argparse.Namespace) -> int:
    try:
        from prs_operator.submit import submit
    except ImportError:
        print("prs submit needs the operator extra: pip install 'parallelrunstep[operator]'",
              file=sys.stderr)
        return 2
    return submit(load_step(args.step, args.set or []), args.namespace, args.wait, args.timeout)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="prs", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    for name, help_text in (("run", "run a step on this machine"),
                            ("validate", "check a step against the API server's rules"),
                            ("plan", "list the mini-batches without running them"),
                            ("submit", "apply a step to the current kube context")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("step", help="ParallelRunStep YAML file")
        sub.add_argument("--set", action="append", metavar="KEY=VALUE",
                         help="override a spec field, e.g. --set nodeCount=4")
        if name in ("run", "plan"):
            sub.add_argument("--output", help="output URI instead of spec.output.uri")
    commands.choices["run"].add_argument(
        "--fresh", action="store_true", help="discard earlier results under the output")
    submit = commands.choices["submit"]
    submit.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    submit.add_argument("--wait", action="store_true", help="follow the step to its end")
    submit.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds --wait follows the step (default 3600)")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handler = {"run": command_run, "validate": command_validate, "plan": command_plan,
               "submit": command_submit}
    try:
        return handler[args.command](args)
    except SpecError as error:
        print(f"prs {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run `prs run` again to resume", file=sys.stderr)
        return 130


def entry() -> None:
    """The console script: main(), then exit without the interpreter's teardown."""
    exit_now(main())


if __name__ == "__main__":
    entry()
