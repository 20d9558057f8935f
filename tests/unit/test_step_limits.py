"""Names that must stay inside their folder, reserved variables, and the progress timeout."""

from __future__ import annotations

from typing import Any

import pytest

from prs_runner.step.spec import INIT_ALLOWANCE_SECONDS, progress_timeout
from prs_runner.step.validation import check_reserved_env, inside_its_root


@pytest.mark.parametrize(("path", "inside"), [
    ("score.py", True), ("pkg/score.py", True), ("..score.py", True), ("a/..b/c.py", True),
    ("./score.py", True), ("/score.py", False), ("../score.py", False), ("a/../../b.py", False),
    ("a/..", False), ("..", False), ("a\\..\\b.py", False), ("a\x00.py", False),
])
def test_inside_its_root(path: str, inside: bool) -> None:
    assert inside_its_root(path) is inside


@pytest.mark.parametrize(("env", "problems"), [
    ([{"name": "PRS_PVC_ROOT", "value": "/x"}],
     ["spec.env[0].name: 'PRS_PVC_ROOT' is reserved: the runner sets PRS_* variables "
      "itself; choose another name"]),
    ([{"name": "OK"}, {"name": "PRS_"}], ["spec.env[1].name: 'PRS_' is reserved: the runner "
                                         "sets PRS_* variables itself; choose another name"]),
    ([{"name": "PRSX"}, {"name": "prs_x"}, {"name": "MY_PRS_X"}], []),
    ([{"value": "no name"}, "not a mapping", {"name": 3}], []),
    ("not a list", []),
    (None, []),
])
def test_reserved_env_names(env: Any, problems: list[str]) -> None:
    assert check_reserved_env(env) == problems


@pytest.mark.parametrize(("spec", "seconds"), [
    ({"runInvocationTimeout": 60, "runMaxTry": 3}, 60 * 3 + INIT_ALLOWANCE_SECONDS),
    ({"runInvocationTimeout": 5, "runMaxTry": 1, "progressUpdateTimeout": None},
     5 + INIT_ALLOWANCE_SECONDS),
    ({"runInvocationTimeout": 60, "runMaxTry": 3, "progressUpdateTimeout": 7}, 7),
])
def test_progress_timeout(spec: dict[str, Any], seconds: int) -> None:
    assert progress_timeout(spec) == seconds
    assert INIT_ALLOWANCE_SECONDS == 600


def test_an_invalid_glob_says_why() -> None:
    from prs_runner.step.globs import GlobError, glob_to_regex

    with pytest.raises(GlobError) as raised:
        glob_to_regex("[z-a]*")
    assert str(raised.value) == "'[z-a]*' is not a valid glob (bad character range z-a at " \
                                "position 1)"


def test_prs_validate_names_an_invalid_glob() -> None:
    # Offline only: the API server cannot compile a glob (a CEL rule has no glob syntax);
    # on a cluster the plan pod reports it as InputInvalid with this same message.
    from prs_runner.step.validation import validate_spec

    problems = validate_spec({"code": {"entryScript": "s.py", "configMap": "c"},
                              "input": {"type": "files", "uri": "pvc://d/in", "glob": "[z-a]*"},
                              "output": {"uri": "pvc://d/out"}})
    assert problems == ["spec.input.glob: '[z-a]*' is not a valid glob (bad character range "
                        "z-a at position 1)"]
