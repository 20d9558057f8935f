"""crds/parallelrunsteps.yaml against the offline validator's model (prs_runner.step.spec):
no drift in fields, defaults, enums, minimums or patterns. The API server's own verdicts on
the shared cases are checked in tests/cluster/test_crd.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from prs_runner.step import spec as model

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "crds" / "parallelrunsteps.yaml"
PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"
TYPES = {"str": "string", "int": "integer", "number": "number", "bool": "boolean"}

Schema = dict[str, Any]


def load_crd() -> dict[str, Any]:
    document = yaml.safe_load(CRD_PATH.read_text())
    assert isinstance(document, dict)
    return document


def version() -> dict[str, Any]:
    versions = load_crd()["spec"]["versions"]
    assert len(versions) == 1
    found: dict[str, Any] = versions[0]
    return found


def root_schema() -> Schema:
    found: Schema = version()["schema"]["openAPIV3Schema"]
    return found


def spec_schema() -> Schema:
    found: Schema = root_schema()["properties"]["spec"]
    return found


def field_schema(path: str) -> Schema:
    node = spec_schema()
    for part in path.split("."):
        node = node["properties"][part]
    return node


def leaf_fields(schema: Schema, prefix: str = "") -> Iterator[str]:
    """Dotted paths of the spec's fields; code/input/output are sections, not fields."""
    for name, child in schema["properties"].items():
        path = f"{prefix}{name}"
        if child.get("type") == "object" and "properties" in child and name in model.SECTIONS:
            yield from leaf_fields(child, path + ".")
        else:
            yield path


def walk(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}" if path else name)
    if "items" in schema:
        yield from walk(schema["items"], path + "[]")


def rules(schema: Schema) -> list[dict[str, str]]:
    found: list[dict[str, str]] = schema.get("x-kubernetes-validations", [])
    return found


def test_crd_identity() -> None:
    crd = load_crd()
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == "parallelrunsteps.parallelrun.io"
    spec = crd["spec"]
    assert spec["group"] == "parallelrun.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "ParallelRunStep",
        "listKind": "ParallelRunStepList",
        "plural": "parallelrunsteps",
        "singular": "parallelrunstep",
        "shortNames": ["prs"],
        "categories": ["all", "batch"],
    }
    assert f"{spec['group']}/{version()['name']}" == model.API_VERSION
    assert version()["name"] == "v1alpha1"
    assert version()["served"] is True
    assert version()["storage"] is True
    assert version()["subresources"] == {"status": {}}


def test_spec_fields_match_the_model() -> None:
    in_model = {*model.SCALAR_FIELDS, *model.LIST_FIELDS, *model.OBJECT_FIELDS}
    in_crd = set(leaf_fields(spec_schema()))
    assert in_crd - in_model == set(), "in the CRD only"
    assert in_model - in_crd == set(), "in spec.py only"
    assert set(spec_schema()["properties"]) == {*model.DEFAULTS, *model.SECTIONS, "miniBatchSize"}
    for section, fields in model.SECTIONS.items():
        assert set(field_schema(section)["properties"]) == fields, section


@pytest.mark.parametrize("path", sorted(model.SCALAR_FIELDS))
def test_scalar_types_match_the_model(path: str) -> None:
    kind = model.SCALAR_FIELDS[path]
    schema = field_schema(path)
    if kind == "size":
        assert schema.get(INT_OR_STRING) is True
        assert "type" not in schema
    else:
        assert schema["type"] == TYPES[kind]


@pytest.mark.parametrize("path", sorted(model.LIST_FIELDS))
def test_list_fields_are_arrays(path: str) -> None:
    assert field_schema(path)["type"] == "array"


def test_defaults_match_the_model() -> None:
    properties = spec_schema()["properties"]
    crd_defaults = {name: s["default"] for name, s in properties.items() if "default" in s}
    model_defaults = {k: v for k, v in model.DEFAULTS.items() if v is not None}
    assert crd_defaults == model_defaults
    # depends on input.type: the runner (and operator) apply it
    assert "default" not in properties["miniBatchSize"]
    assert properties["ttlSecondsAfterFinished"].get("nullable") is True
    for path, schema in walk(spec_schema()):
        if path.count(".") or "[]" in path:
            assert "default" not in schema, path


@pytest.mark.parametrize("path", sorted(model.ENUMS))
def test_enums_match_the_model(path: str) -> None:
    assert tuple(field_schema(path)["enum"]) == model.ENUMS[path]


def test_every_enum_is_in_the_model() -> None:
    assert {path for path, schema in walk(spec_schema()) if "enum" in schema} == set(model.ENUMS)


@pytest.mark.parametrize("path", sorted(model.MINIMUMS))
def test_minimums_match_the_model(path: str) -> None:
    assert field_schema(path)["minimum"] == model.MINIMUMS[path]


def test_maximums_match_the_model() -> None:
    maximums = {path: schema["maximum"] for path, schema in walk(spec_schema())
                if "maximum" in schema and path != "allowedFailedPercent"}
    assert maximums == model.MAXIMUMS


def test_every_minimum_is_in_the_model() -> None:
    minimums = {path for path, schema in walk(spec_schema()) if "minimum" in schema}
    assert minimums == {*model.MINIMUMS, "allowedFailedPercent"}
    percent = field_schema("allowedFailedPercent")
    assert (percent["type"], percent["minimum"], percent["maximum"]) == ("number", 0, 100)


def test_required_fields() -> None:
    assert root_schema()["required"] == ["spec"]
    assert set(spec_schema()["required"]) == {"code", "input", "output"}
    assert field_schema("code")["required"] == ["entryScript"]
    assert set(field_schema("input")["required"]) == {"type", "uri"}
    assert field_schema("output")["required"] == ["uri"]
    assert set(field_schema("sideInputs")["items"]["required"]) == {"name", "uri"}
    assert field_schema("env")["items"]["required"] == ["name"]


def test_patterns_match_the_model() -> None:
    assert field_schema("miniBatchSize")["pattern"] == model.MINI_BATCH_SIZE_PATTERN.pattern
    assert (field_schema("input")["properties"]["partitionFormat"]["pattern"]
            == model.PARTITION_FORMAT_PATTERN.pattern)
    assert (
        field_schema("env")["items"]["properties"]["name"]["pattern"]
        == model.ENV_NAME_PATTERN.pattern
    )
    assert (
        field_schema("sideInputs")["items"]["properties"]["name"]["pattern"]
        == model.SIDE_INPUT_NAME_PATTERN.pattern
    )
    name_rule = rules(root_schema())[0]["rule"]
    assert f"matches('{model.NAME_PATTERN.pattern}')" in name_rule
    assert "size() >= 3" in name_rule
    assert "size() <= 48" in name_rule


def test_file_name_pattern_excludes_exactly_the_forbidden_characters() -> None:
    pattern = re.compile(field_schema("appendRowFileName")["pattern"])
    for char in model.FORBIDDEN_FILE_NAME_CHARS:
        assert not pattern.fullmatch(f"a{char}b"), char
    for char in "abcXYZ019 ._-+=()[]@!$',;":
        assert pattern.fullmatch(f"a{char}b"), char
    assert not pattern.fullmatch("")
    assert pattern.fullmatch(str(model.DEFAULTS["appendRowFileName"]))


def test_schema_is_structural() -> None:
    """Every node has a type (but int-or-string ones); unknown fields kept only where meant."""
    for path, schema in walk(root_schema()):
        if schema.get(INT_OR_STRING):
            assert "type" not in schema, path
        else:
            assert schema.get("type") in {
                "object",
                "array",
                "string",
                "integer",
                "number",
                "boolean",
            }, path
        if schema.get("type") == "array":
            assert "items" in schema, path
        if schema.get(PRESERVE_UNKNOWN):
            # Kubernetes' own pod types, kept as given; podTemplate lists which ones.
            assert path == "spec.resources" or path.startswith("spec.podTemplate."), path
        for key in ("anyOf", "oneOf", "allOf", "not"):
            assert key not in schema, path
    assert rules(root_schema()), "the metadata.name rule is at the root"


def test_map_lists_are_keyed_by_name() -> None:
    for path in ("sideInputs", "env"):
        schema = field_schema(path)
        assert schema["x-kubernetes-list-type"] == "map"
        assert schema["x-kubernetes-list-map-keys"] == ["name"]


def test_every_rule_message_starts_with_a_field_path() -> None:
    for path, schema in walk(root_schema()):
        for rule in rules(schema):
            head = rule["message"].split(":", 1)[0]
            assert head.startswith(("spec", "metadata.name")), (path, rule)
            assert " " not in head, (path, rule)


def test_everything_but_suspend_is_immutable() -> None:
    messages = {
        rule["message"]
        for _, schema in walk(spec_schema())
        for rule in rules(schema)
        if "oldSelf" in rule["rule"]
    }
    immutable = {m.split(":", 1)[0].removeprefix("spec.") for m in messages}
    assert all(m.endswith(": is immutable") for m in messages), messages
    for _, schema in walk(spec_schema()):
        for rule in rules(schema):
            if "oldSelf" in rule["rule"]:
                assert rule.get("reason") == "FieldValueForbidden", rule
                assert rule.get("fieldPath"), rule
    expected = set(leaf_fields(spec_schema())) - {"suspend"}
    assert immutable == expected


def test_printer_columns() -> None:
    columns = {c["name"]: c for c in version()["additionalPrinterColumns"]}
    assert columns["Phase"]["jsonPath"] == ".status.phase"
    assert columns["Progress"]["jsonPath"] == ".status.progress"
    assert columns["Failed"]["jsonPath"] == ".status.items.failed"
    assert columns["Nodes"]["jsonPath"] == ".spec.nodeCount"
    assert columns["Duration"]["jsonPath"] == ".status.duration"
    assert (columns["Age"]["jsonPath"], columns["Age"]["type"]) == (
        ".metadata.creationTimestamp",
        "date",
    )
    status = root_schema()["properties"]["status"]["properties"]
    for column in columns.values():
        parts = column["jsonPath"].lstrip(".").split(".")
        if parts[0] == "status":
            node: Schema = {"properties": status}
            for part in parts[1:]:
                node = node["properties"][part]
            assert node["type"] == column["type"], column


def test_status_schema() -> None:
    status = root_schema()["properties"]["status"]["properties"]
    assert set(status) >= {
        "observedGeneration",
        "phase",
        "conditions",
        "startTime",
        "completionTime",
        "miniBatches",
        "items",
        "shards",
        "fingerprint",
        "output",
        "reusedFrom",
        "message",
    }
    assert status["phase"]["enum"] == [
        "Pending",
        "Planning",
        "Running",
        "Merging",
        "Succeeded",
        "Failed",
        "Suspended",
    ]
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["required"]) == {
        "type",
        "status",
        "lastTransitionTime",
        "reason",
        "message",
    }
    assert status["reusedFrom"]["nullable"] is True
