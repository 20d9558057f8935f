"""`prs`: its own commands, and the ones other packages register (the operator's submit)."""

from __future__ import annotations

import argparse

import pytest

from prs_runner.commands.prs_cli import parser, unavailable


def test_submit_comes_from_the_operators_entry_point() -> None:
    args = parser().parse_args(["submit", "step.yaml", "-n", "team", "--wait"])
    assert (args.command, args.namespace, args.wait, args.timeout) == (
        "submit", "team", True, 3600.0)
    assert args.handler.__module__ == "prs_operator.submit_command"


def test_a_command_that_cannot_load_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    handler = unavailable("submit", ImportError("No module named 'kubernetes'"))
    assert handler(argparse.Namespace()) == 2
    assert capsys.readouterr().err.strip() == (
        "prs submit is not available: No module named 'kubernetes' "
        "(install it with: pip install 'parallelrunstep[operator]')")
