# PYTHON_ARGCOMPLETE_OK (argcomplete's global completion looks for this mark)
"""`prs`: run, validate and plan ParallelRunSteps on this machine, or submit them to a cluster.

Commands that need more than the runner (the operator's `submit` needs the Kubernetes
client) are registered by their own packages under the entry-point group `prs.commands`:
each entry point names a function that adds its subparser and sets `handler` on it. The
runner imports none of them by name, so the dependency points from them to the runner."""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from prs_runner.execution.processes import exit_now, runner_gc, spawn_standby_shard

if TYPE_CHECKING:
    import subprocess

# The rest is imported when a command runs: `prs run` starts its first shard before that.


def print_summary(name: str, result: dict[str, Any], reused: bool, report: str | None) -> None:
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
    lines.append(f"  report: {report}" if report else
                 f"  report: not written (said above); `prs report {root}` builds it")
    print("\n".join(lines))


def command_run(args: argparse.Namespace) -> int:
    from prs_runner.execution.local_shards import start_shards
    from prs_runner.step.validation import load_step

    step = load_step(args.step, args.set or [], output_flag(args.output_uri))
    shards = start_shards(step, standby=args.standby)  # they import while `prs run` loads
    print_notices(step.spec, sys.stderr)

    from prs_runner.execution.local_run import run_local

    outcome = run_local(step, fresh=args.fresh, shards=shards)
    chosen = None
    if step.spec["processCountPerNode"] is None and not outcome.reused:
        from prs_runner.execution.cpu_share import local_process_count

        chosen = local_process_count(step.spec["nodeCount"])
    if args.output == "json":  # job_result.json's content, and what only this run knows
        print_json({**outcome.result, "reused": outcome.reused, "report": outcome.report,
                    "processCountPerNode": chosen[0] if chosen else None})
    else:
        print_summary(step.name, outcome.result, outcome.reused, outcome.report)
        if chosen:
            print(f"  processes: {chosen[0]} per shard, one per CPU ({chosen[1]}); "
                  "processCountPerNode sets another number")
    return 0 if outcome.result["status"] == "Succeeded" else 1


def print_json(document: Any) -> None:
    import json

    print(json.dumps(document, indent=2))


def output_format(value: str) -> str:
    """-o/--output: text or json, as kubectl's; where the output goes is --output-uri."""
    if value not in ("text", "json"):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not text or json (the output's location is --output-uri {value})")
    return value


def output_flag(value: str | None) -> str | None:
    """--output-uri as a shell user means it: a relative path from where the command runs (paths
    in the step file are relative to the file)."""
    if value is None or "://" in value:
        return value
    return os.path.abspath(value)


def command_validate(args: argparse.Namespace) -> int:
    from prs_runner.step.validation import load_step

    step = load_step(args.step, args.set or [])
    print(f"{args.step}: valid ParallelRunStep {step.name!r}")
    print_notices(step.spec, sys.stdout)
    return 0


def print_notices(spec: dict[str, Any], stream: TextIO) -> None:
    """What Azure's program arguments in spec.arguments set, or why they change nothing."""
    from prs_runner.step.azure_arguments import read_azure_arguments

    for notice in read_azure_arguments(spec["arguments"]).notices:
        print(f"  {notice}", file=stream)


def command_plan(args: argparse.Namespace) -> int:
    from prs_runner.execution.local_run import build_plan
    from prs_runner.planning.plan import describe_plan, plan_summary
    from prs_runner.step.validation import load_step

    plan = build_plan(load_step(args.step, args.set or [], output_flag(args.output_uri)))
    if args.output == "json":
        print_json(plan_summary(plan))
    else:
        print("\n".join(describe_plan(plan)))
    return 0


def same_file(one: str, other: str) -> bool:
    """Whether ONE and OTHER are one file: the same path, a symbolic or a hard link."""
    try:
        return os.path.samefile(one, other)
    except OSError:  # one of them does not exist (yet)
        return Path(one).resolve() == Path(other).resolve()


def command_convert(args: argparse.Namespace) -> int:
    from prs_runner.step.azure_conversion import convert_azure_file
    from prs_runner.step.azure_job_sections import AzureConversionError

    if args.output and same_file(args.output, args.azure):
        print(f"prs convert: -o {args.output} is the Azure file itself; write the step to "
              "another file", file=sys.stderr)
        return 2
    try:
        converted = convert_azure_file(args.azure)
    except AzureConversionError as error:
        print(f"prs convert: {error}", file=sys.stderr)
        return 2
    if args.output:
        try:
            Path(args.output).write_text(converted.text)
        except OSError as error:
            print(f"prs convert: cannot write -o {args.output}: {error.strerror or error}; "
                  "give another file", file=sys.stderr)
            return 2
    else:
        sys.stdout.write(converted.text)
    for problem in converted.problems:  # placeholders the user must fill in, named by field
        print(f"prs convert: {args.output or 'the step'}: {problem}", file=sys.stderr)
    return 0


def command_report(args: argparse.Namespace) -> int:
    from prs_runner.output.run_report_writer import NoRunResults, write_run_report
    from prs_runner.storage.filesystem import Storage

    try:
        print(write_run_report(Storage(output_flag(args.output_uri) or args.output_uri)))
    except NoRunResults as error:
        print(f"prs report: {error}", file=sys.stderr)
        return 2
    return 0


def command_completion(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode(["prs"], shell=args.shell))
    return 0


def answer_completion(root: argparse.ArgumentParser) -> None:
    """A shell asking for completions (argcomplete's protocol: _ARGCOMPLETE and COMP_LINE in
    the environment): answer and exit. Imported only then: it costs every other call nothing."""
    if "_ARGCOMPLETE" in os.environ:
        import argcomplete

        argcomplete.autocomplete(root)


COMMAND_GROUP = "prs.commands"
Register = Callable[[Any], None]  # register(subparsers): add one subparser, set its handler


def add_step_command(commands: Any, name: str, help_text: str,
                     handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """A subcommand that takes a step file and `--set` overrides; for registered commands too."""
    sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
    sub.add_argument("step", help="ParallelRunStep YAML file")
    sub.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a spec field, e.g. --set nodeCount=4")
    sub.set_defaults(handler=handler, on_interrupt="interrupted")
    return sub


def unavailable(name: str, error: Exception) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        print(f"prs {name} is not available: {error} "
              "(install it with: pip install 'parallelrunstep[operator]')", file=sys.stderr)
        return 2
    return handler


def register_plugins(commands: Any) -> None:
    """Commands of other installed packages; one that cannot load says why when called."""
    from importlib.metadata import entry_points  # 30 ms: only when a plugin may be wanted

    for point in sorted(entry_points(group=COMMAND_GROUP), key=lambda p: p.name):
        try:
            register: Register = point.load()
        except ImportError as error:
            sub = commands.add_parser(point.name, help=f"(not available: {error})")
            sub.add_argument("rest", nargs=argparse.REMAINDER)
            sub.set_defaults(handler=unavailable(point.name, error))
            continue
        register(commands)


BUILT_IN = ("run", "validate", "plan", "convert", "report", "completion")


def parser(plugins: bool = True) -> argparse.ArgumentParser:
    """PLUGINS: register the other packages' commands (not needed to run a built-in one)."""
    root = argparse.ArgumentParser(prog="prs", description=(__doc__ or "").split("\n\n")[0])
    commands = root.add_subparsers(dest="command", required=True)
    for name, help_text, handler in (
            ("run", "run a step on this machine", command_run),
            ("validate", "check a step against the API server's rules", command_validate),
            ("plan", "list the mini-batches without running them", command_plan)):
        sub = add_step_command(commands, name, help_text, handler)
        if name in ("run", "plan"):
            sub.add_argument("--output-uri", metavar="URI",
                             help="output URI instead of spec.output.uri")
            sub.add_argument("-o", "--output", type=output_format, default="text",
                             metavar="{text,json}", help="json: one JSON document on stdout, "
                             "for scripts (progress stays on stderr)")
    convert = commands.add_parser("convert", help="write an Azure ML parallel job (or "
                                  "ParallelRunConfig file) as a step")
    convert.add_argument("azure", help="Azure ML parallel job YAML, or ParallelRunConfig file")
    convert.add_argument("-o", "--output", help="step YAML to write (default: stdout)")
    convert.set_defaults(handler=command_convert, on_interrupt="interrupted")
    report = commands.add_parser("report", help="(re)build a run's HTML report "
                                 "(_prs/report/index.html) and print where it is")
    report.add_argument("output_uri", metavar="OUTPUT",
                        help="the step's output: a folder or an object-store URI")
    report.set_defaults(handler=command_report, on_interrupt="interrupted")
    completion = commands.add_parser("completion", help="print the shell code that completes "
                                     "prs, e.g. eval \"$(prs completion bash)\"")
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))
    completion.set_defaults(handler=command_completion, on_interrupt="interrupted")
    commands.choices["run"].add_argument(
        "--fresh", action="store_true", help="discard earlier results under the output")
    commands.choices["run"].set_defaults(
        on_interrupt="interrupted: run `prs run` again to resume")
    if plugins:
        register_plugins(commands)
    return root


def main(argv: list[str] | None = None,
         standby: subprocess.Popen[bytes] | None = None) -> int:
    """STANDBY: `prs run`'s first shard process, started before the imports (entry())."""
    from prs_runner.commands.os_errors import describe_os_error
    from prs_runner.step.spec import SpecError
    from prs_runner.storage.output_lock import OutputInUse

    argv = sys.argv[1:] if argv is None else argv
    root = parser(plugins=not argv or argv[0] not in BUILT_IN)
    answer_completion(root)
    args = root.parse_args(argv)
    args.standby = standby
    try:
        return args.handler(args)  # type: ignore[no-any-return]
    except (SpecError, OutputInUse) as error:
        print(f"prs {args.command}: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `prs run ... | head`: the reader left; the run itself is complete or resumable.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # noqa: TID251
        return 1
    except OSError as error:
        print(f"prs {args.command}: {describe_os_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        return say_stopped(stop, args.on_interrupt)  # what it left behind, per command


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where `prs` is, so that it stops as on Ctrl-C: its shards stopped
    and their outcomes written, what is left said."""


def say_stopped(stop: KeyboardInterrupt, left: str = "interrupted") -> int:
    """Say that Ctrl-C or SIGTERM (`kill`, `timeout`, a CI job cancelled) stopped `prs`,
    with what it LEFT (worded for Ctrl-C); the exit code, 128 + the signal."""
    if isinstance(stop, Terminated):
        print(left.replace("interrupted", "terminated (SIGTERM)", 1), file=sys.stderr)
        return 128 + signal.SIGTERM
    print(left, file=sys.stderr)
    return 128 + signal.SIGINT


STOP_GRACE_SECONDS = 10.0  # for the shards to stop and write where they were, once told


def stop_on_signal(signum: int, frame: object) -> None:
    """SIGTERM or SIGINT: stop as on Ctrl-C (raised where `prs` is). A second one ends
    `prs` at once, and so does a stop longer than STOP_GRACE_SECONDS: on storage that does
    not answer, `prs` waits in a call no signal handler interrupts (neither a second SIGTERM
    nor Ctrl-C ended it; only SIGKILL)."""
    for again in (signal.SIGTERM, signal.SIGINT):
        signal.signal(again, signal.SIG_DFL)
    watchdog = threading.Timer(STOP_GRACE_SECONDS, give_up_stopping, (signum,))
    watchdog.daemon = True
    watchdog.start()
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def give_up_stopping(signum: int) -> None:
    name = signal.Signals(signum).name
    resume = ": run `prs run` again to resume" if sys.argv[1:2] == ["run"] else ""
    print(f"prs: stopping on {name} took longer than {STOP_GRACE_SECONDS:.0f} s (is the "
          f"output's storage answering?); ended without waiting{resume}", file=sys.stderr,
          flush=True)
    os._exit(128 + signum)


def entry() -> None:
    """The console script: main(), then exit without the interpreter's teardown."""
    runner_gc()
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, stop_on_signal)
    try:
        standby = spawn_standby_shard(sys.argv[1:])
        escape_surrogates(sys.stdout, sys.stderr)
        exit_now(main(standby=standby))
    except KeyboardInterrupt as stop:  # before main() could say what it left: nothing yet
        # (a standby shard started meanwhile ends on the EOF of its stdin)
        exit_now(say_stopped(stop))


def escape_surrogates(*streams: TextIO) -> None:
    """A lone surrogate (os.fsdecode of a name that is not UTF-8, in a script's error
    message) is printed as its escape, \\udcff, as the report writes it, rather than
    ending `prs` with a traceback in its summary."""
    for stream in streams:
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


if __name__ == "__main__":
    entry()
