"""The operator image holds only what the operator runs: its lock is compiled from
operator/requirements.in, which must stay the distribution's dependencies minus the data stack."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# What the operator must not import (its lint-imports contract) is what its image leaves out.
RUNNER_ONLY = set(next(
    contract["forbidden_modules"] for contract in PYPROJECT["tool"]["importlinter"]["contracts"]
    if contract["name"] == "the operator imports no data stack"))


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def operator_requirements() -> list[str]:
    project = PYPROJECT["project"]
    core = [r for r in project["dependencies"] if requirement_name(r) not in RUNNER_ONLY]
    build = PYPROJECT["build-system"]["requires"]
    return core + list(project["optional-dependencies"]["operator"]) + list(build)


def listed(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def locked_names(path: Path) -> set[str]:
    return {requirement_name(line) for line in path.read_text().splitlines()
            if re.match(r"^[A-Za-z0-9]", line)}


def test_the_operator_requirements_are_pyprojects_without_the_data_stack() -> None:
    assert sorted(listed(ROOT / "operator/requirements.in")) == sorted(operator_requirements()), (
        "operator/requirements.in differs from pyproject.toml's dependencies (minus what the "
        "operator must not import) plus the operator extra: edit it, then run `make locks`")


def test_the_operator_lock_holds_no_data_stack_and_every_requirement() -> None:
    names = locked_names(ROOT / "operator/requirements.lock")
    assert not names & RUNNER_ONLY
    assert {requirement_name(r) for r in operator_requirements()} <= names, "run `make locks`"


def test_the_runner_lock_holds_the_data_stack() -> None:
    assert {"pandas", "pyarrow", "numpy"} <= RUNNER_ONLY
    assert {"pandas", "pyarrow"} <= locked_names(ROOT / "runner-image/requirements.lock")


def test_requirement_names_are_normalised() -> None:
    cases = {"PyYAML>=6": "pyyaml", "prometheus_client>=0.19": "prometheus-client",
             "kopf": "kopf", "x[extra]>=1": "x", "y ; python_version<'3.12'": "y",
             "z~=1.0": "z", "w!=2": "w"}
    for requirement, name in cases.items():
        assert requirement_name(requirement) == name
