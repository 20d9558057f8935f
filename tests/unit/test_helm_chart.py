"""The chart's files, without helm: the CRD copy has not drifted, every value is documented
and known to the schema, and `kubectl auth can-i --list` tables read into grants."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.chart.helm_cli import CHART, REPO
from tests.chart.rbac_rules import Grant, grants_of_rules, load_operator_rules, parse_can_i_list


def test_chart_crd_is_a_byte_identical_copy() -> None:
    source = REPO / "crds" / "parallelrunsteps.yaml"
    copies = sorted((CHART / "crds").iterdir())
    assert [p.name for p in copies] == [source.name]
    assert copies[0].read_bytes() == source.read_bytes(), (
        "helm/parallelrun-operator/crds/ drifted: cp crds/parallelrunsteps.yaml "
        "helm/parallelrun-operator/crds/"
    )


# Kubernetes objects copied verbatim into the Deployment: their fields are Kubernetes' own.
PASSED_THROUGH = {"resources", "podSecurityContext", "securityContext"}


def undocumented_keys(text: str) -> list[str]:
    """Keys of the chart's own settings (top level, and one level down) without a comment
    above them. Consecutive keys at the same depth may share one comment."""
    lines = text.splitlines()
    found = []
    parent = ""
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        depth = len(line) - len(stripped)
        if not stripped or stripped.startswith("#") or ":" not in stripped or depth > 2:
            continue
        key = stripped.split(":")[0]
        if depth == 0:
            parent = key
        elif parent in PASSED_THROUGH:
            continue
        above = index - 1
        while above >= 0 and is_key_line(lines[above], depth):
            above -= 1
        if above < 0 or not lines[above].strip().startswith("#"):
            found.append(f"{parent}.{key}" if depth else key)
    return found


def is_key_line(line: str, depth: int) -> bool:
    stripped = line.lstrip()
    return bool(stripped) and len(line) - len(stripped) == depth and not stripped.startswith("#")


def test_every_value_has_a_comment() -> None:
    assert undocumented_keys((CHART / "values.yaml").read_text()) == []


def test_an_undocumented_value_is_found() -> None:
    text = "# the image\nimage:\n  # where\n  repository: x\n  tag: y\n\nreplicas: 2\n"
    assert undocumented_keys(text) == ["replicas"]
    assert undocumented_keys("# a\na: 1\nb:\n  c: 1\n") == ["b.c"]


def schema_mismatches(values: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Keys of values.yaml the schema does not describe (in strict objects), and top-level
    properties of the schema without a default in values.yaml."""
    if not isinstance(values, dict) or schema.get("additionalProperties") is not False:
        return []
    known = set(schema.get("properties", {})) - {"global"}
    found = [f"{path}.{key} not in the schema" for key in sorted(set(values) - known)]
    if not path:
        found += [f"{key} not in values.yaml" for key in sorted(known - set(values))]
    for key in sorted(set(values) & known):
        found += schema_mismatches(values[key], schema["properties"][key], f"{path}.{key}")
    return found


def test_values_and_schema_describe_the_same_keys() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    assert schema_mismatches(values, schema) == []


def test_operator_rules_expand_to_single_grants() -> None:
    grants = grants_of_rules(load_operator_rules())
    assert Grant("batch", "jobs", "delete") in grants
    assert Grant("", "events", "create") in grants
    # Only what the operator uses: no events.k8s.io, no event updates, no patching of steps.
    assert not any(g.group == "events.k8s.io" for g in grants)
    assert Grant("", "events", "patch") not in grants
    assert Grant("parallelrun.io", "parallelrunsteps", "patch") not in grants
    assert Grant("parallelrun.io", "parallelrunsteps/status", "patch") in grants
    assert not any(g.verb == "*" or g.resource == "*" or g.group == "*" for g in grants)


CAN_I_TABLE = """\
Resources                                       Non-Resource URLs   Resource Names   Verbs
selfsubjectreviews.authentication.k8s.io        []                  []               [create]
jobs.batch                                      []                  []               [get list]
parallelrunsteps.parallelrun.io/status          []                  []               [patch]
pods                                            []                  [runner-0]       [get]
                                                [/api/* /version]   []               [get]
"""


@pytest.mark.parametrize(
    "expected",
    [
        Grant("authentication.k8s.io", "selfsubjectreviews", "create"),
        Grant("batch", "jobs", "get"),
        Grant("batch", "jobs", "list"),
        Grant("parallelrun.io", "parallelrunsteps/status", "patch"),
        Grant("", "pods", "get", "runner-0"),
        Grant("", "", "get", url="/api/*"),
        Grant("", "", "get", url="/version"),
    ],
    ids=str,
)
def test_can_i_table_rows(expected: Grant) -> None:
    assert expected in parse_can_i_list(CAN_I_TABLE)


def test_can_i_table_has_nothing_else() -> None:
    assert len(parse_can_i_list(CAN_I_TABLE)) == 7


@pytest.mark.parametrize("text", ["", "error: forbidden\n", "Resources  Verbs\nnonsense row\n"])
def test_can_i_table_rejects_other_output(text: str) -> None:
    with pytest.raises(ValueError):
        parse_can_i_list(text)
