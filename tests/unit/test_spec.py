"""The ParallelRunStep spec helpers: the error message, null handling, defaults, `--set`
overrides and mini-batch sizes, beyond the validation table of test_validation.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prs_runner.step.spec import (
    DEFAULTS,
    MiniBatchSize,
    SideInput,
    SpecError,
    Step,
    apply_defaults,
    drop_nulls,
    lookup,
    parse_mini_batch_size,
)
from prs_runner.step.yaml_values import apply_overrides, coerce_override

MINIMAL = {
    "code": {"entryScript": "score.py", "sourceDirectory": "./src"},
    "input": {"type": "files", "uri": "./in"},
    "output": {"uri": "./out"},
}


# SpecError


def test_spec_error_message_lists_one_problem_per_line() -> None:
    error = SpecError(["spec.nodeCount: must be >= 1 (got 0)", "spec.input.uri: required"])
    assert str(error) == (
        "invalid ParallelRunStep:\n"
        "  - spec.nodeCount: must be >= 1 (got 0)\n"
        "  - spec.input.uri: required"
    )
    assert error.problems == ["spec.nodeCount: must be >= 1 (got 0)", "spec.input.uri: required"]
    assert isinstance(error, ValueError)


def test_spec_error_keeps_its_own_copy_of_the_problems() -> None:
    problems = ["a: bad"]
    error = SpecError(problems)
    problems.append("b: bad")
    assert error.problems == ["a: bad"]


# Side inputs and paths


@pytest.mark.parametrize(
    ("name", "env_name"),
    [("model", "PRS_SIDE_INPUT_MODEL"), ("label-map.v2", "PRS_SIDE_INPUT_LABEL_MAP_V2"),
     ("_x9", "PRS_SIDE_INPUT__X9")],
    ids=["plain", "dash-and-dot", "underscore-digit"],
)
def test_side_input_environment_variable(name: str, env_name: str) -> None:
    assert SideInput(name, "s3://b/m").env_name == env_name


def test_step_typed_views() -> None:
    spec = apply_defaults({**MINIMAL, "sideInputs": [{"name": "model", "uri": "s3://b/m"}],
                           "miniBatchSize": "2KB", "input": {"type": "tabular", "uri": "x"}})
    step = Step("s", "ns", spec)
    assert step.side_inputs == [SideInput("model", "s3://b/m")]
    assert step.mini_batch_size == MiniBatchSize(bytes=2048)
    assert step.get("input.uri") == "x"
    assert step.base_dir == Path(".")


@pytest.mark.parametrize(
    ("path", "expected"),
    [("code.entryScript", "score.py"), ("input", MINIMAL["input"]), ("input.glob", None),
     ("code.entryScript.x", None), ("nothing.here", None)],
    ids=["nested", "section", "missing-leaf", "below-a-scalar", "missing-section"],
)
def test_lookup(path: str, expected: Any) -> None:
    assert lookup(MINIMAL, path) == expected


# Null means absent (as on the API server), except where null is a value


def test_nulls_are_dropped_at_the_top_and_in_sections() -> None:
    spec = {**MINIMAL, "nodeCount": None, "input": {"type": "files", "uri": "x", "glob": None},
            "output": {"uri": None}}
    assert drop_nulls(spec) == {**MINIMAL, "input": {"type": "files", "uri": "x"},
                                "output": {}}


def test_ttl_null_is_kept_as_never_delete() -> None:
    assert drop_nulls({"ttlSecondsAfterFinished": None}) == {"ttlSecondsAfterFinished": None}


def test_nulls_inside_env_and_side_input_items_are_dropped() -> None:
    spec = {"env": [{"name": "A", "value": None}, {"name": "B", "value": "b"}],
            "sideInputs": [{"name": "model", "uri": None}]}
    assert drop_nulls(spec) == {"env": [{"name": "A"}, {"name": "B", "value": "b"}],
                                "sideInputs": [{"name": "model"}]}


def test_malformed_list_items_are_left_for_validation_to_report() -> None:
    spec = {"env": ["A=1", None], "sideInputs": "model", "code": "score.py"}
    assert drop_nulls(spec) == spec


def test_nulls_inside_pod_settings_are_passed_through() -> None:
    spec = {"resources": {"limits": None}, "podTemplate": {"spec": {"nodeSelector": None}}}
    assert drop_nulls(spec) == spec


def test_drop_nulls_leaves_its_input_alone() -> None:
    spec = {"nodeCount": None, "input": {"glob": None}, "env": [{"name": "A", "value": None}]}
    drop_nulls(spec)
    assert spec == {"nodeCount": None, "input": {"glob": None},
                    "env": [{"name": "A", "value": None}]}


# Defaults


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "10"),
        (25, "25"),
        ("25", "25"),
        ("1MB", "1MB"),
        (True, True),
        (1.5, 1.5),
    ],
    ids=["absent", "integer-as-string", "string", "bytes", "bool-kept-for-validation",
         "float-kept-for-validation"],
)
def test_mini_batch_size_default_and_form(given: Any, expected: Any) -> None:
    spec = dict(MINIMAL) if given is None else {**MINIMAL, "miniBatchSize": given}
    out = apply_defaults(spec)
    assert out["miniBatchSize"] == expected
    assert type(out["miniBatchSize"]) is type(expected)


def test_tabular_default_mini_batch_size_is_one_megabyte() -> None:
    out = apply_defaults({**MINIMAL, "input": {"type": "tabular", "uri": "x"}})
    assert out["miniBatchSize"] == "1MB"


def test_defaults_fill_every_absent_field_and_keep_given_ones() -> None:
    out = apply_defaults({**MINIMAL, "nodeCount": 3, "errorThreshold": 0})
    assert out == {**DEFAULTS, **MINIMAL, "nodeCount": 3, "errorThreshold": 0,
                   "miniBatchSize": "10"}


# --set overrides


@pytest.mark.parametrize(
    ("path", "text"),
    [("nodeCount", "null"), ("nodeCount", "None"), ("runMaxTry", "none"),
     ("ttlSecondsAfterFinished", "NONE"), ("errorThreshold", "nUll"), ("nodeCount", "~")],
    ids=["null", "None", "none", "NONE", "null-any-case", "tilde"],
)
def test_null_spellings_clear_an_integer_field(path: str, text: str) -> None:
    assert coerce_override(path, text) is None


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [("allowedFailedPercent", "None", "None"), ("image", "null", "null"),
     ("miniBatchSize", "none", "none"), ("allowReuse", "None", "None")],
    ids=["number", "string", "size", "bool"],
)
def test_none_is_only_null_for_integer_fields(path: str, text: str, expected: Any) -> None:
    assert coerce_override(path, text) == expected


def test_unknown_override_lists_the_known_fields() -> None:
    with pytest.raises(SpecError) as raised:
        coerce_override("nodeCnt", "2")
    (problem,) = raised.value.problems
    head, known = problem.removesuffix(")").split(" (known: ")
    assert head == "--set nodeCnt: unknown field"
    fields = known.split(", ")
    assert fields == sorted(fields)
    assert {"nodeCount", "input.glob", "code.entryScript", "env", "input.partitionKeys",
            "resources", "podTemplate", "ttlSecondsAfterFinished"} <= set(fields)


def test_override_value_may_contain_equals_signs() -> None:
    out = apply_overrides(MINIMAL, ["arguments=[--k=v, a=b]", "input.glob=x=y/*.csv"])
    assert out["arguments"] == ["--k=v", "a=b"]
    assert out["input"]["glob"] == "x=y/*.csv"


def test_override_creates_a_missing_section() -> None:
    out = apply_overrides({"nodeCount": 2}, ["spec.output.uri=/tmp/out", "code.path=/c"])
    assert out == {"nodeCount": 2, "output": {"uri": "/tmp/out"}, "code": {"path": "/c"}}


def test_later_overrides_win() -> None:
    out = apply_overrides(MINIMAL, ["nodeCount=2", "nodeCount=5"])
    assert out["nodeCount"] == 5


def test_override_without_equals_sign_names_it() -> None:
    with pytest.raises(SpecError) as raised:
        apply_overrides(MINIMAL, ["nodeCount"])
    assert raised.value.problems == ["--set nodeCount: expected key=value"]


# Mini-batch sizes


@pytest.mark.parametrize("text", ["0", "1TB", "10\n", "1 MB", "10rows ", "5ROWS", "1kib"])
def test_bad_mini_batch_size_error_names_the_text(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_mini_batch_size(text, "tabular")
    assert raised.value.args == (text,)


@pytest.mark.parametrize(
    ("text", "input_type", "expected"),
    [("7", "files", MiniBatchSize(count=7)), ("7", "tabular", MiniBatchSize(bytes=7)),
     ("3KB", "files", MiniBatchSize(bytes=3072)), ("12rows", "files", MiniBatchSize(rows=12)),
     ("3GB", "tabular", MiniBatchSize(bytes=3 * 1024**3)),
     ("10kb", "tabular", MiniBatchSize(bytes=10 * 1024)),
     ("1mb", "tabular", MiniBatchSize(bytes=1024**2)),
     ("2Gb", "tabular", MiniBatchSize(bytes=2 * 1024**3))],
    ids=["files-count", "tabular-bytes", "kilobytes", "rows", "gigabytes", "azure-kb",
         "azure-mb", "mixed-case-gb"],
)
def test_mini_batch_size_units(text: str, input_type: str, expected: MiniBatchSize) -> None:
    assert parse_mini_batch_size(text, input_type) == expected


def test_local_paths_and_file_uris_resolve_to_real_paths(tmp_path: Path) -> None:
    """A file:// URI was kept as written: through a link or '..' it named the output's own
    folder without the overlap checks seeing it."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    step = Step("s", "ns", {}, base_dir=tmp_path)
    real = str(tmp_path.resolve() / "real")
    assert step.resolve_local("./link") == real
    assert step.resolve_local("link/../real") == real
    assert step.resolve_local(f"file://{tmp_path}/link") == real
    assert step.resolve_local(f"file://{tmp_path}/x/../real") == real
    assert step.resolve_local("s3://bucket/file://x") == "s3://bucket/file://x"
    assert step.resolve_local("gs://bucket/p") == "gs://bucket/p"
