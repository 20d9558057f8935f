"""What a runner process imports before it has work: every module is on the clock of a
step's start (the first shard of `prs run` is started before `prs` has read the step; a
pod's shard before its workers). Each is checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("yaml", "pandas", "pyarrow", "numpy", "kubernetes")


def imported(module: str) -> list[str]:
    """Which of HEAVY a fresh interpreter holds after importing MODULE."""
    code = (f"import sys, json, {module}\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return list(json.loads(result.stdout))


@pytest.mark.parametrize("module", [
    "prs_runner.commands.runner_cli",  # a shard (pandas and pyarrow only when tabular)
    "prs_runner.execution.worker",  # a spawned worker (a forked one has its shard's)
])
def test_a_runner_process_starts_without_yaml_or_the_data_stack(module: str) -> None:
    assert imported(module) == []


def test_prs_itself_starts_without_the_data_stack() -> None:
    """`prs` starts its first shard first thing; YAML (the step) comes once a command runs."""
    assert imported("prs_runner.commands.prs_cli") == []
