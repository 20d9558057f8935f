"""`prs`: its own commands, and the ones other packages register (the operator's submit)."""

from __future__ import annotations

import argparse
from unittest.mock import patch

import pytest

from prs_runner.commands.prs_cli import main, parser, unavailable


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


def test_a_built_in_command_is_parsed_without_loading_the_plugins() -> None:
    """Plugins are found through the installed packages' metadata (about 30 ms): `prs run`
    does not pay for them, `prs --help` and `prs submit` do."""
    from prs_runner.commands.prs_cli import BUILT_IN

    def commands(root: argparse.ArgumentParser) -> set[str]:
        return {action.dest for action in root._actions  # every subparser's choice
                if isinstance(action, argparse._SubParsersAction)
                for action in action._choices_actions}

    assert commands(parser(plugins=False)) == set(BUILT_IN)
    assert commands(parser()) == {*BUILT_IN, "submit"}
    with patch("prs_runner.commands.prs_cli.register_plugins") as register:
        with pytest.raises(SystemExit):
            main(["run", "--help"])
        register.assert_not_called()
        with pytest.raises(SystemExit):
            main(["--help"])
        register.assert_called_once()
