"""A step file or a --set value that is not what it seems is refused in one line naming it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from prs_runner.step.spec import SpecError
from prs_runner.step.validation import load_step
from prs_runner.step.yaml_values import nesting

STEP = """\
apiVersion: parallelrun.io/v1alpha1
kind: ParallelRunStep
metadata: {name: step-files}
spec:
  code: {entryScript: score.py, sourceDirectory: ./src}
  input: {type: files, uri: ./data}
  output: {uri: ./out}
"""


def problems_of(path: Path, *overrides: str) -> list[str]:
    with pytest.raises(SpecError) as raised:
        load_step(path, list(overrides))
    return raised.value.problems


def test_a_key_given_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "step.yaml"
    path.write_text(STEP + "  nodeCount: 2\n  nodeCount: 3\n")
    assert problems_of(path) == [
        f"{path}: line 9, column 3: not valid YAML: key 'nodeCount' is given twice"]


def test_aliases_are_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "step.yaml"
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    path.write_text(STEP + "\n".join(levels) + "\n")
    started = time.monotonic()
    [problem] = problems_of(path)
    assert time.monotonic() - started < 1
    assert problem.startswith(f"{path}: line 9, column 10: not valid YAML: aliases (*a0) ")


@pytest.mark.parametrize("depth", [65, 5000])  # past the limit; past Python's recursion limit
def test_a_document_nested_too_deeply_is_refused_in_one_line(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "step.yaml"
    path.write_text(STEP + "  arguments: " + "[" * depth + "]" * depth + "\n")
    assert problems_of(path) == [f"{path}: not valid YAML: nested more than 64 levels deep"]


@pytest.mark.parametrize(("value", "depth"), [
    (1, 0), ({}, 1), ([[]], 2), ({"a": [1, {"b": [[2]]}], "c": {}}, 5), ([[], [[[]]]], 4),
])
def test_nesting(value: object, depth: int) -> None:
    assert nesting(value) == depth


@pytest.mark.parametrize(("brackets", "refused"), [(61, False), (62, True)])
def test_sixty_four_levels_are_read_and_sixty_five_refused(tmp_path: Path, brackets: int,
                                                           refused: bool) -> None:
    """The document (1), spec (2), podTemplate (3) and BRACKETS lists: 64 or 65 levels."""
    path = tmp_path / "step.yaml"
    path.write_text(STEP + "  podTemplate: {a: " + "[" * brackets + "]" * brackets + "}\n")
    nested = [p for p in problems_of(path) if "nested more than 64 levels deep" in p]
    assert bool(nested) is refused


def test_a_file_that_is_not_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "step.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: not a YAML text file (")


@pytest.mark.parametrize(("override", "expected"), [
    ("nodeCount=[1", "--set nodeCount=[1: not a valid value (expected ',' or ']', but got "
                     "'<stream end>')"),
    ("nodeCount=", "--set nodeCount=: empty value; give one"),
    ("nodeCount= ", "--set nodeCount=: empty value; give one"),
    ("ttlSecondsAfterFinished=", "--set ttlSecondsAfterFinished=: empty value; give one "
                                 "(null resets it)"),
    ("nodeCount", "--set nodeCount: expected key=value"),
])
def test_bad_set_values_are_named(tmp_path: Path, override: str, expected: str) -> None:
    path = tmp_path / "step.yaml"
    path.write_text(STEP)
    assert problems_of(path, override) == [expected]


def test_null_resets_a_nullable_field(tmp_path: Path) -> None:
    path = tmp_path / "step.yaml"
    path.write_text(STEP + "  progressUpdateTimeout: 30\n")
    assert load_step(path, ["progressUpdateTimeout=null"]).spec["progressUpdateTimeout"] is None
    assert load_step(path).spec["progressUpdateTimeout"] == 30
