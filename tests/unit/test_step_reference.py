"""docs/reference/step.md is what tools/step_reference.py writes from the CRD, and the CRD
gives it something to say: a description on every node of the schema, an example on every
field that is not documented by its own fields, examples the schema itself accepts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import step_reference as reference

REPO = Path(__file__).resolve().parents[2]
CRD_PATHS = (REPO / "crds" / "parallelrunsteps.yaml",
             REPO / "helm" / "parallelrun-operator" / "crds" / "parallelrunsteps.yaml")


def schema() -> reference.Schema:
    return reference.root_schema(yaml.safe_load(reference.CRD_PATH.read_text()))


def test_the_committed_reference_is_what_the_generator_writes() -> None:
    expected = reference.render(yaml.safe_load(reference.CRD_PATH.read_text()))
    committed = reference.REFERENCE_PATH.read_text() if reference.REFERENCE_PATH.exists() else ""
    assert committed == expected, (
        "docs/reference/step.md differs from crds/parallelrunsteps.yaml: run "
        f"`{reference.REGENERATE}` and commit the result")


def test_the_root_metadata_is_bare_as_the_api_server_requires() -> None:
    """It refuses anything but the type there; the page documents metadata instead."""
    assert schema()["properties"]["metadata"] == {"type": "object"}
    page = reference.render(yaml.safe_load(reference.CRD_PATH.read_text()))
    section = page.split("### `metadata`", 1)[1].split("\n## ", 1)[0]
    assert "Kubernetes' object metadata" in section
    assert "metadata.name: must be a DNS-1123 label" in section  # the root's rule
    assert "name: predict-digits" in section


@pytest.mark.parametrize("path", CRD_PATHS, ids=["crds", "chart"])
def test_every_node_of_the_schema_has_a_description(path: Path) -> None:
    root = reference.root_schema(yaml.safe_load(path.read_text()))
    undescribed = [field.path for field in reference.walk(root)
                   if not str(field.schema.get("description", "")).strip()
                   and field.path != "metadata"]  # the API server allows only its type
    assert "description" in root
    assert undescribed == [], f"{path.relative_to(REPO)}: fields without a description: " + (
        ", ".join(undescribed))


def test_every_field_has_an_example() -> None:
    missing = [field.path for field in reference.walk(schema())
               if "example" not in field.schema and not reference.is_section(field.schema)
               and not field.path.endswith("[]") and field.path != "metadata"]
    assert missing == [], "fields without an `example:` in the CRD: " + ", ".join(missing)


def violations(value: Any, node: reference.Schema) -> list[str]:
    """What the schema's own value rules say about VALUE (enum, bounds, pattern, lengths)."""
    found = []
    if "enum" in node and value not in node["enum"]:
        found.append(f"{value!r} not in {node['enum']}")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and not node.get("minimum", value) <= value <= node.get("maximum", value):
        found.append(f"{value} outside {node.get('minimum')}..{node.get('maximum')}")
    if isinstance(value, str):
        if "pattern" in node and not re.search(node["pattern"], value):
            found.append(f"{value!r} does not match {node['pattern']}")
        if not node.get("minLength", 0) <= len(value) <= node.get("maxLength", len(value)):
            found.append(f"{value!r} has a length outside the limits")
    if isinstance(value, list):
        for item in value:
            found.extend(violations(item, node.get("items", {})))
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(violations(item, node.get("properties", {}).get(key, {})))
    return found


def test_the_examples_pass_their_own_fields_rules() -> None:
    wrong = {field.path: problems for field in reference.walk(schema())
             if "example" in field.schema
             and (problems := violations(field.schema["example"], field.schema))}
    assert wrong == {}


RULES = [
    # (schema, immutable fields derived from its transition rules)
    ({"properties": {"spec": {"x-kubernetes-validations": [
        {"rule": "self.a == oldSelf.a", "message": "spec.a: is immutable", "fieldPath": ".a"},
        {"rule": "self.b.size() > 0", "message": "spec.b: must not be empty"}]}}},
     {"spec.a"}),
    ({"properties": {"spec": {"properties": {"code": {"x-kubernetes-validations": [
        {"rule": "self == oldSelf", "message": "spec.code: is immutable"}]}}}}},
     {"spec.code"}),
    ({"properties": {"spec": {"properties": {"env": {"items": {"x-kubernetes-validations": [
        {"rule": "self.name == oldSelf.name", "message": "m", "fieldPath": ".name"}]}}}}}},
     {"spec.env[].name"}),
    ({"properties": {"spec": {"properties": {"suspend": {"type": "boolean"}}}}}, set()),
]


@pytest.mark.parametrize(("tree", "expected"), RULES)
def test_immutable_fields_come_from_transition_rules(tree: reference.Schema,
                                                     expected: set[str]) -> None:
    assert reference.immutable_fields(tree) == expected


SPEC: reference.Schema = {"type": "object", "properties": {
    "suspend": {"type": "boolean"},
    "code": {"type": "object", "properties": {"path": {"type": "string"}}},
    "env": {"type": "array", "items": {"type": "object", "properties": {"name": {}}}},
}}
CHANGES = [
    # (path, schema, immutable fields, what the reference says)
    ("spec.suspend", SPEC["properties"]["suspend"], frozenset({"spec.code"}), "yes"),
    ("spec.code", SPEC["properties"]["code"], frozenset({"spec.code"}), "no (immutable)"),
    ("spec.code.path", {"type": "string"}, frozenset({"spec.code"}), "no (immutable)"),
    ("spec.code", SPEC["properties"]["code"], frozenset({"spec.code.path"}), "no (immutable)"),
    ("spec.env[].name", {}, frozenset({"spec.env"}), "no (immutable)"),
    ("spec.environment", {}, frozenset({"spec.env"}), "yes"),
    ("spec", SPEC, frozenset({"spec.code", "spec.env"}), "only `suspend`"),
    ("status.phase", {"type": "string"}, frozenset(), "written by the operator"),
    ("metadata", {"type": "object"}, frozenset(), "as for any Kubernetes object"),
]


@pytest.mark.parametrize(("path", "node", "immutable", "expected"), CHANGES)
def test_change_after_creation(path: str, node: reference.Schema, immutable: frozenset[str],
                               expected: str) -> None:
    assert reference.change_after_creation(path, node, immutable) == expected


TYPES = [
    ({"type": "string"}, "string"),
    ({"type": "string", "format": "date-time"}, "string (date-time)"),
    ({"x-kubernetes-int-or-string": True}, "integer or string"),
    ({"type": "integer", "nullable": True}, "integer, or null"),
    ({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
     "list of string, each value once"),
    ({"type": "array", "items": {"type": "object"}, "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name"]}, "list of object, one per name"),
    ({"type": "object", "additionalProperties": {"type": "string"}}, "map of string"),
    ({"type": "object", "x-kubernetes-preserve-unknown-fields": True},
     "object, Kubernetes' own fields kept as given"),
]


@pytest.mark.parametrize(("node", "expected"), TYPES)
def test_type_text(node: reference.Schema, expected: str) -> None:
    assert reference.type_text(node) == expected


NESTED = [
    ("spec.nodeCount", 2, {"spec": {"nodeCount": 2}}),
    ("spec.env[].name", "A", {"spec": {"env": [{"name": "A"}]}}),
    ("spec.env", [{"name": "A"}], {"spec": {"env": [{"name": "A"}]}}),
    ("kind", "ParallelRunStep", {"kind": "ParallelRunStep"}),
]


@pytest.mark.parametrize(("path", "value", "expected"), NESTED)
def test_an_example_is_shown_where_it_goes_in_a_step(path: str, value: Any,
                                                      expected: Any) -> None:
    assert reference.nest(path, value) == expected


PROSE = [
    ("run(mini_batch) on **/*.png", r"run(mini\_batch) on \*\*/\*.png"),
    ("packed by `prs submit_x`", "packed by `prs submit_x`"),
    ("a|b <c>", r"a&#124;b \<c\>"),
]


@pytest.mark.parametrize(("text", "expected"), PROSE)
def test_crd_prose_is_escaped_for_markdown_outside_code(text: str, expected: str) -> None:
    assert reference.plain(text) == expected


def test_the_reference_names_every_field_and_its_anchor() -> None:
    text = reference.REFERENCE_PATH.read_text()
    for field in reference.walk(schema()):
        assert f"### `{field.path}` {{#{reference.anchor(field.path)}}}" in text, field.path
        assert f"(#{reference.anchor(field.path)})" in text, field.path
