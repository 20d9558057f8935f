"""`prs status NAME` and `prs logs NAME` for a step on a cluster, registered into the runner's
`prs` through the entry points `prs.commands: status, logs` (pyproject.toml). Loading this
is cheap (shell completion loads it too): the Kubernetes client is imported when a command
runs."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prs_operator.pod_logs import (
    ROLES,
    interleave,
    log_sources,
    newest_per_label,
    role_finished,
)

if TYPE_CHECKING:
    from prs_operator.step_inspection import StepReader

POLL_SECONDS = 2.0  # how often `prs logs -f` looks for new pods (a retried shard's)


def add_cluster_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("name", help="the ParallelRunStep's name")
    sub.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    sub.add_argument("--context", help="kubeconfig context (default: the current one)")
    sub.add_argument("--kubeconfig",
                     help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")


def register_status(commands: Any) -> None:
    sub: argparse.ArgumentParser = commands.add_parser(
        "status", help="a step on the cluster: its progress and each shard's pod")
    add_cluster_options(sub)
    sub.add_argument("-o", "--output", choices=("text", "json"), default="text",
                     help="json: the same, for scripts")
    sub.set_defaults(handler=command_status, on_interrupt="interrupted")


def register_logs(commands: Any) -> None:
    sub: argparse.ArgumentParser = commands.add_parser(
        "logs", help="the logs of a step's shards on the cluster, each line marked [shard-I]")
    add_cluster_options(sub)
    sub.add_argument("--shard", type=int, metavar="I", help="only shard I (default: every one)")
    sub.add_argument("--role", choices=ROLES, default="run",
                     help="the pods: run (the shards, default), plan, merge or reuse")
    sub.add_argument("-f", "--follow", action="store_true",
                     help="follow the logs, and retried shards' new pods, until they end")
    sub.add_argument("--timestamps", action="store_true", help="keep each line's time")
    sub.set_defaults(handler=command_logs, on_interrupt="stopped following the logs; the step "
                                                        "goes on in the cluster")


def command_status(args: argparse.Namespace) -> int:
    def show(reader: StepReader, args: argparse.Namespace) -> int:
        from prs_operator.step_overview import render_json, render_text

        view = reader.overview(args.name)
        print(render_json(view) if args.output == "json" else render_text(view))
        return 0
    return against_cluster("status", args, show)


def command_logs(args: argparse.Namespace) -> int:
    return against_cluster("logs", args, follow_logs if args.follow else print_logs)


def against_cluster(command: str, args: argparse.Namespace,
                    body: Callable[[StepReader, argparse.Namespace], int]) -> int:
    """BODY with a reader of the chosen namespace; what goes wrong, in one line."""
    try:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        from prs_operator.kube import api_reason
        from prs_operator.kube_access import AccessError, connect
        from prs_operator.step_inspection import StepNotFound, StepReader
    except ImportError as error:
        print(f"prs {command} needs the operator extra ({error}): "
              "pip install 'parallelrunstep[operator]'", file=sys.stderr)
        return 2
    host = "the API server"
    try:
        api, namespace = connect(args.kubeconfig, args.context)
        host = f"the API server at {api.configuration.host}"
        return body(StepReader(api, args.namespace or namespace), args)
    except (AccessError, StepNotFound) as error:
        print(f"prs {command}: {error}", file=sys.stderr)
        return 1 if isinstance(error, StepNotFound) else 2
    except ApiException as error:
        reason, message = api_reason(error)
        print(f"prs {command}: the API server refused ({error.status} {reason}): {message}",
              file=sys.stderr)
        return 2
    except HTTPError as error:
        cause = getattr(error, "reason", None) or error
        print(f"prs {command}: cannot reach {host}: {cause}", file=sys.stderr)
        return 2


def print_logs(reader: StepReader, args: argparse.Namespace) -> int:
    """The newest pod of each shard, lines interleaved in time order."""
    from kubernetes.client.exceptions import ApiException

    from prs_operator.kube import api_reason

    sources = newest_per_label(log_sources(reader.own_pods(reader.step(args.name)),
                                           args.role, args.shard))
    if not sources:
        print(f"prs logs: step {args.name} has no {describe(args)} pod (not yet, or no "
              "longer: ttlSecondsAfterFinished)", file=sys.stderr)
        return 1
    logs = []
    for source in sources:
        if not source.started:
            print(f"[{source.label}] (pod {source.pod} has not started)", file=sys.stderr)
            continue
        try:
            logs.append((source.label, reader.log(source.pod, timestamps=True)))
        except ApiException as error:
            print(f"[{source.label}] (no log from pod {source.pod}: {api_reason(error)[1]})",
                  file=sys.stderr)
    for line in interleave(logs, args.timestamps):
        print(line)
    return 0 if logs else 1  # not one log could be read: said above, pod by pod


def describe(args: argparse.Namespace) -> str:
    if args.role != "run":
        return args.role  # type: ignore[no-any-return]
    return "shard" if args.shard is None else f"shard-{args.shard}"


def follow_logs(reader: StepReader, args: argparse.Namespace) -> int:
    """Follows the newest pod of each shard, and each pod started after (a retry), until no
    more can come (role_finished) and every follow has ended; Ctrl-C stops it at once."""
    from prs_operator.step_inspection import LogPump

    pump = LogPump(reader, args.timestamps)
    seen: set[str] = set()
    tries: dict[str, int] = {}
    first = True
    while True:
        step = reader.step(args.name)
        sources = log_sources(reader.own_pods(step), args.role, args.shard)
        if first:  # a retried shard's older pods ended before: not shown without -f either
            newest = {source.pod for source in newest_per_label(sources)}
            seen.update(source.pod for source in sources if source.pod not in newest)
        for source in [s for s in sources if s.started and s.pod not in seen]:
            seen.add(source.pod)
            tries[source.label] = tries.get(source.label, 0) + 1
            note = f"(retried: pod {source.pod})" if tries[source.label] > 1 else ""
            pump.start(source.label, source.pod, note)
        first = False
        if role_finished(step.get("status") or {}, args.role) and pump.running == 0:
            return 0
        for line in pump.lines_until(time.monotonic() + POLL_SECONDS):
            print(line, flush=True)

