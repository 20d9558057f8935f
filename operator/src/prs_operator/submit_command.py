"""`prs submit`, registered into the runner's `prs` command line through the entry point
`prs.commands: submit` (pyproject.toml), so the runner never imports the operator. Loading
it is cheap: the Kubernetes client is imported only when the command runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from prs_runner.commands.prs_cli import add_step_command
from prs_runner.step.validation import load_step


def command_submit(args: argparse.Namespace) -> int:
    try:
        from prs_operator.submit import submit
    except ImportError:
        print("prs submit needs the operator extra: pip install 'parallelrunstep[operator]'",
              file=sys.stderr)
        return 2
    step = load_step(args.step, args.set or [])
    return submit(step, args.namespace, args.wait, args.timeout)


def register(commands: Any) -> None:
    sub = add_step_command(commands, "submit", "apply a step to the current kube context",
                           command_submit)
    sub.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    sub.add_argument("--wait", action="store_true", help="follow the step to its end")
    sub.add_argument("--timeout", type=float, default=3600.0,
                     help="seconds --wait follows the step (default 3600)")
    sub.set_defaults(on_interrupt="stopped following; the step goes on in the cluster "
                                  "(kubectl get prs)")
