"""The offline validator (`prs validate`) over the shared table of cases, plus defaults,
`--set` overrides, `load_step` and mini-batch sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from prs_runner.step.spec import (
    DEFAULTS,
    MiniBatchSize,
    SpecError,
    parse_mini_batch_size,
)
from prs_runner.step.validation import load_step, step_from_document, validate_document
from prs_runner.step.yaml_values import apply_overrides, coerce_override
from tests.spec_cases import BAD_CASES, GOOD_CASES, Case, good_document


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.id)
def test_bad_case_is_rejected_naming_the_field(case: Case) -> None:
    problems = validate_document(case.document())
    assert problems, f"{case.id}: accepted"
    assert any(case.field in problem for problem in problems), problems


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.id)
def test_every_problem_starts_with_a_field_path(case: Case) -> None:
    for problem in validate_document(case.document()):
        head = problem.split(":", 1)[0]
        assert head.startswith(("spec", "metadata.name")), problem
        assert " " not in head, problem


@pytest.mark.parametrize("case", GOOD_CASES, ids=lambda c: c.id)
def test_good_variant_is_accepted(case: Case) -> None:
    assert validate_document(case.document()) == []


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in [*BAD_CASES, *GOOD_CASES]]
    assert len(ids) == len(set(ids))
    assert len(BAD_CASES) >= 30


def test_good_document_is_fresh_every_call() -> None:
    first = good_document()
    first["spec"]["nodeCount"] = 99
    assert "nodeCount" not in good_document()["spec"]


def test_wrong_api_version_and_kind_are_rejected() -> None:
    doc = good_document()
    doc["apiVersion"] = "parallelrun.io/v1"
    doc["kind"] = "ParallelRun"
    problems = validate_document(doc)
    assert any(p.startswith("apiVersion:") for p in problems)
    assert any(p.startswith("kind:") for p in problems)


def test_several_problems_are_all_reported() -> None:
    doc = good_document()
    doc["spec"].update(nodeCount=0, loggingLevel="TRACE", appendRowFileName="a/b")
    problems = validate_document(doc)
    for field in ("spec.nodeCount", "spec.loggingLevel", "spec.appendRowFileName"):
        assert any(p.startswith(field + ":") for p in problems), problems


def test_spec_error_lists_every_problem() -> None:
    doc = good_document()
    doc["spec"].update(nodeCount=0, runMaxTry=0)
    with pytest.raises(SpecError) as raised:
        step_from_document(doc)
    assert len(raised.value.problems) == 2
    assert "spec.nodeCount" in str(raised.value)
    assert "spec.runMaxTry" in str(raised.value)


# Defaults


def test_defaults_of_a_minimal_files_step() -> None:
    step = step_from_document(good_document())
    assert step.name == "predict-digits"
    assert step.namespace == "default"
    for key, value in DEFAULTS.items():
        assert step.spec[key] == value, key
    assert step.spec["miniBatchSize"] == "10"
    assert step.mini_batch_size == MiniBatchSize(count=10)


def test_defaults_of_a_minimal_tabular_step() -> None:
    doc = good_document()
    doc["spec"]["input"] = {"type": "tabular", "uri": "./sales"}
    step = step_from_document(doc)
    assert step.spec["miniBatchSize"] == "1MB"
    assert step.mini_batch_size == MiniBatchSize(bytes=1024 * 1024)


def test_explicit_values_win_over_defaults() -> None:
    doc = good_document()
    doc["metadata"]["namespace"] = "ml"
    doc["spec"].update(nodeCount=4, miniBatchSize=25, allowReuse=False)
    step = step_from_document(doc)
    assert step.namespace == "ml"
    assert step.spec["nodeCount"] == 4
    assert step.spec["allowReuse"] is False
    assert step.spec["miniBatchSize"] == "25"  # an integer size is kept as its string form
    assert step.spec["runMaxTry"] == DEFAULTS["runMaxTry"]


def test_defaults_do_not_share_mutable_values_with_the_input() -> None:
    doc = good_document()
    step = step_from_document(doc)
    assert "nodeCount" not in doc["spec"]
    assert step.get("input.type") == "files"
    assert step.get("input.format") is None


def test_null_means_absent_like_on_the_api_server() -> None:
    doc = good_document()
    doc["spec"].update(nodeCount=None, miniBatchSize=None, ttlSecondsAfterFinished=None)
    doc["spec"]["input"]["glob"] = None
    doc["spec"]["env"] = [{"name": "A", "value": None}]
    step = step_from_document(doc)
    assert step.spec["nodeCount"] == 1
    assert step.mini_batch_size == MiniBatchSize(count=10)
    assert "glob" not in step.spec["input"]
    assert step.spec["env"] == [{"name": "A"}]
    assert step.spec["ttlSecondsAfterFinished"] is None
    assert doc["spec"]["nodeCount"] is None  # the input is left alone


def test_null_override_restores_the_default() -> None:
    spec = apply_overrides(good_document()["spec"], ["nodeCount=4", "nodeCount=null"])
    step = step_from_document({**good_document(), "spec": spec})
    assert step.spec["nodeCount"] == 1


# --set overrides


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("nodeCount", "4", 4),
        ("processCountPerNode", "2", 2),
        ("errorThreshold", "-1", -1),
        ("allowedFailedPercent", "12.5", 12.5),
        ("allowReuse", "false", False),
        ("suspend", "true", True),
        ("miniBatchSize", "20", "20"),
        ("miniBatchSize", "1MB", "1MB"),
        ("input.glob", "*.png", "*.png"),
        ("input.uri", "s3://bucket/x", "s3://bucket/x"),
        ("loggingLevel", "DEBUG", "DEBUG"),
        ("image", "123", "123"),
        ("arguments", '[--a, "1"]', ["--a", "1"]),
        ("input.partitionKeys", "[store, region]", ["store", "region"]),
        ("env", "[{name: A, value: b}]", [{"name": "A", "value": "b"}]),
        ("resources", "{limits: {cpu: '2'}}", {"limits": {"cpu": "2"}}),
        ("ttlSecondsAfterFinished", "null", None),
        ("ttlSecondsAfterFinished", "600", 600),
    ],
)
def test_override_is_typed_like_its_field(path: str, text: str, expected: Any) -> None:
    value = coerce_override(path, text)
    assert value == expected
    assert type(value) is type(expected)


def test_unknown_override_names_the_key() -> None:
    with pytest.raises(SpecError) as raised:
        coerce_override("nodeCnt", "2")
    assert "nodeCnt" in str(raised.value)
    assert raised.value.problems[0].startswith("--set nodeCnt:")


def test_override_without_value_is_an_error() -> None:
    with pytest.raises(SpecError, match="nodeCount"):
        apply_overrides(good_document()["spec"], ["nodeCount"])


def test_overrides_set_nested_fields_and_leave_the_input_alone() -> None:
    spec = good_document()["spec"]
    out = apply_overrides(spec, ["spec.nodeCount=4", "input.glob=*.jpg", "allowReuse=false"])
    assert out["nodeCount"] == 4
    assert out["input"]["glob"] == "*.jpg"
    assert out["allowReuse"] is False
    assert "nodeCount" not in spec
    assert spec["input"]["glob"] == "**/*.png"


def test_override_with_a_bad_value_fails_validation() -> None:
    spec = apply_overrides(good_document()["spec"], ["nodeCount=two"])
    doc = {**good_document(), "spec": spec}
    problems = validate_document(doc)
    assert any(p.startswith("spec.nodeCount:") for p in problems)


# load_step


def write_step(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_load_step_resolves_paths_next_to_the_yaml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_file = write_step(tmp_path / "project" / "step.yaml", good_document())
    monkeypatch.chdir(tmp_path)
    step = load_step(Path("project/step.yaml"))
    project = (tmp_path / "project").resolve()
    assert step.base_dir == project
    assert step.resolve_local(step.get("input.uri")) == str(project / "data" / "digits")
    assert step.resolve_local(step.get("code.sourceDirectory")) == str(project / "src")
    assert step.resolve_local("/abs/path") == "/abs/path"
    assert step.resolve_local("s3://bucket/prefix") == "s3://bucket/prefix"
    assert step.resolve_local("pvc://claim/sub") == "pvc://claim/sub"
    assert step_file.exists()


def test_load_step_applies_overrides_and_output(tmp_path: Path) -> None:
    step_file = write_step(tmp_path / "step.yaml", good_document())
    step = load_step(step_file, ["nodeCount=4", "miniBatchSize=3"], output_uri="/tmp/out")
    assert step.spec["nodeCount"] == 4
    assert step.mini_batch_size == MiniBatchSize(count=3)
    assert step.get("output.uri") == "/tmp/out"


def test_load_step_reports_bad_overrides(tmp_path: Path) -> None:
    step_file = write_step(tmp_path / "step.yaml", good_document())
    with pytest.raises(SpecError) as raised:
        load_step(step_file, ["nodeCount=0"])
    assert any(p.startswith("spec.nodeCount:") for p in raised.value.problems)
    with pytest.raises(SpecError, match="bogus"):
        load_step(step_file, ["bogus=1"])


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), ("spec: [unclosed", "not valid YAML"), ("- a\n- b\n", "mapping")],
)
def test_load_step_reports_unreadable_files(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "step.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SpecError, match=message):
        load_step(path)


# Mini-batch sizes


@pytest.mark.parametrize(
    ("text", "input_type", "expected"),
    [
        ("10", "files", MiniBatchSize(count=10)),
        ("1", "files", MiniBatchSize(count=1)),
        ("512KB", "tabular", MiniBatchSize(bytes=512 * 1024)),
        ("1MB", "tabular", MiniBatchSize(bytes=1024**2)),
        ("2GB", "tabular", MiniBatchSize(bytes=2 * 1024**3)),
        ("4096", "tabular", MiniBatchSize(bytes=4096)),
        ("5000rows", "tabular", MiniBatchSize(rows=5000)),
    ],
)
def test_parse_mini_batch_size(text: str, input_type: str, expected: MiniBatchSize) -> None:
    assert parse_mini_batch_size(text, input_type) == expected


@pytest.mark.parametrize("text", ["0", "1TB", "abc", "-5", "", "10\n", "1 MB"])
def test_parse_mini_batch_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_mini_batch_size(text, "tabular")


# Exact messages: what `prs validate` prints


def problems_with(**changes: Any) -> list[str]:
    doc = good_document()
    doc["spec"].update(changes)
    return validate_document(doc)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"image": 5}, "spec.image: must be a string (got 5)"),
        ({"miniBatchSize": True}, "spec.miniBatchSize: must be a string (got True)"),
        ({"miniBatchSize": 1.5}, "spec.miniBatchSize: must be a string (got 1.5)"),
        ({"nodeCount": "2"}, "spec.nodeCount: must be an integer (got '2')"),
        ({"errorThreshold": 0.5}, "spec.errorThreshold: must be an integer (got 0.5)"),
        ({"allowedFailedPercent": "50"},
         "spec.allowedFailedPercent: must be a number (got '50')"),
        ({"allowReuse": "yes"}, "spec.allowReuse: must be true or false (got 'yes')"),
        ({"loggingLevel": "TRACE"},
         "spec.loggingLevel: must be one of WARNING, INFO, DEBUG (got 'TRACE')"),
        ({"appendRowFormat": "json"},
         "spec.appendRowFormat: must be one of text, csv, parquet (got 'json')"),
        ({"env": ["A=1"]}, "spec.env[0].name: must match ^[A-Za-z_][A-Za-z0-9_.-]*$ (got None)"),
        ({"sideInputs": [{"name": "m", "uri": "u"}, {"name": "m", "uri": "v"}]},
         "spec.sideInputs[1].name: duplicate name 'm'"),
    ],
    ids=["str", "size-bool", "size-float", "int", "int-not-float", "number", "bool",
         "enum-logging", "enum-format", "env-item-not-a-mapping", "duplicate-side-input"],
)
def test_spec_problem_message(changes: dict[str, Any], problem: str) -> None:
    assert problems_with(**changes) == [problem]


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ({"entryScript": "s.py"},
         "spec.code: exactly one of sourceDirectory, configMap, path must be set (got none)"),
        ({"entryScript": "s.py", "sourceDirectory": "./src", "path": "/c"},
         "spec.code: exactly one of sourceDirectory, configMap, path must be set "
         "(got sourceDirectory, path)"),
        ({"entryScript": "s.py", "configMap": "c", "path": "/c", "sourceDirectory": "./s"},
         "spec.code: exactly one of sourceDirectory, configMap, path must be set "
         "(got sourceDirectory, configMap, path)"),
        ({"sourceDirectory": "./src"}, "spec.code.entryScript: required"),
    ],
    ids=["no-source", "two-sources", "three-sources", "no-entry-script"],
)
def test_code_problem_message(code: dict[str, Any], problem: str) -> None:
    assert problems_with(code=code) == [problem]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"apiVersion": "parallelrun.io/v1"},
         "apiVersion: must be parallelrun.io/v1alpha1 (got 'parallelrun.io/v1')"),
        ({"apiVersion": None}, "apiVersion: must be parallelrun.io/v1alpha1 (got None)"),
        ({"kind": "ParallelRun"}, "kind: must be ParallelRunStep (got 'ParallelRun')"),
        ({"metadata": {"name": "ab"}},
         "metadata.name: must be a DNS-1123 label of 3-48 characters (lower-case letters, "
         "digits, '-', starting with a letter) (got 'ab')"),
        ({"metadata": "predict-digits"},
         "metadata.name: must be a DNS-1123 label of 3-48 characters (lower-case letters, "
         "digits, '-', starting with a letter) (got None)"),
        ({"metadata": None},
         "metadata.name: must be a DNS-1123 label of 3-48 characters (lower-case letters, "
         "digits, '-', starting with a letter) (got None)"),
    ],
    ids=["api-version", "no-api-version", "kind", "short-name", "metadata-not-a-mapping",
         "no-metadata"],
)
def test_document_problem_message(change: dict[str, Any], problem: str) -> None:
    assert validate_document({**good_document(), **change}) == [problem]


def test_load_step_output_uri_without_an_output_section(tmp_path: Path) -> None:
    doc = good_document()
    del doc["spec"]["output"]
    step_file = write_step(tmp_path / "step.yaml", doc)
    with pytest.raises(SpecError, match=r"spec\.output: required"):
        load_step(step_file)
    assert load_step(step_file, output_uri="/tmp/out").get("output.uri") == "/tmp/out"


@pytest.mark.parametrize(("names", "problems"), [
    (["model", "labels"], []),
    (["model", "Model"], ["spec.sideInputs[1].name: 'Model' and 'model' would share the "
                          "variable PRS_SIDE_INPUT_MODEL; rename one"]),
    (["my-m", "other", "my.m", "MY_M"], [
        "spec.sideInputs[2].name: 'my.m' and 'my-m' would share the variable "
        "PRS_SIDE_INPUT_MY_M; rename one",
        "spec.sideInputs[3].name: 'MY_M' and 'my-m' would share the variable "
        "PRS_SIDE_INPUT_MY_M; rename one"]),
    (["a", "a"], ["spec.sideInputs[1].name: duplicate name 'a'"]),  # said once, as a duplicate
    (["1bad", "m-x", "M_X"], [
        "spec.sideInputs[0].name: must match ^[A-Za-z_][A-Za-z0-9_.-]*$ (got '1bad')",
        "spec.sideInputs[2].name: 'M_X' and 'm-x' would share the variable "
        "PRS_SIDE_INPUT_M_X; rename one"]),
])
def test_side_inputs_that_would_share_a_variable_are_refused(
        names: list[str], problems: list[str]) -> None:
    document = good_document()
    document["spec"]["sideInputs"] = [{"name": n, "uri": f"./side{i}"}
                                      for i, n in enumerate(names)]
    assert validate_document(document) == problems


def test_an_env_value_with_a_nul_is_refused_in_one_line() -> None:
    document = good_document()
    document["spec"]["env"] = [{"name": "OK", "value": "fine"}, {"name": "X", "value": "a\0b"}]
    assert validate_document(document) == [
        "spec.env[1].value: holds a NUL character, which no environment variable can; "
        "remove it"]


def test_side_inputs_that_are_not_mappings_are_named_not_compared() -> None:
    document = good_document()
    document["spec"]["sideInputs"] = ["model", {"name": "model", "uri": "./m"},
                                      {"name": "Model", "uri": "./n"}]
    problems = validate_document(document)
    assert ("spec.sideInputs[2].name: 'Model' and 'model' would share the variable "
            "PRS_SIDE_INPUT_MODEL; rename one") in problems
    assert any(p.startswith("spec.sideInputs[0]") for p in problems)
