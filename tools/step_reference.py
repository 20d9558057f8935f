"""Writes docs/reference/step.md from crds/parallelrunsteps.yaml: every field of the
ParallelRunStep resource with its type, default, allowed values, whether it can change after
creation, its description and an example.

The CRD is the single source: descriptions and examples are OpenAPI `description:` and
`example:` values in its schema, and immutability is read from its CEL transition rules (the
ones that compare `self` with `oldSelf`), so the page cannot say anything the API server does
not enforce. tests/unit/test_step_reference.py fails when the committed page differs from what
this writes. Regenerate with `make docs-reference`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CRD_PATH = REPO / "crds" / "parallelrunsteps.yaml"
REFERENCE_PATH = REPO / "docs" / "reference" / "step.md"
REGENERATE = "make docs-reference"
IMMUTABLE = "no (immutable)"

Schema = dict[str, Any]


@dataclass(frozen=True)
class Field:
    """One node of the schema, named by its dotted path (`[]` stands for a list's items)."""

    path: str
    schema: Schema
    required: bool


def root_schema(crd: dict[str, Any]) -> Schema:
    schema: Schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


# The API server refuses anything but `type` in the root's `metadata` (it is Kubernetes' own
# ObjectMeta), so its text and example live here; its rules are the root's `metadata.` ones.
OBJECT_METADATA: Schema = {
    "description": "Kubernetes' object metadata: name, namespace, labels, annotations. The "
                   "step's Jobs and pods are named after it and add suffixes to the name.",
    "example": {"name": "predict-digits", "labels": {"team": "vision"}},
}


def documented(path: str, schema: Schema, root: Schema) -> Schema:
    """SCHEMA as the page shows it: the root's metadata gets its text and its rules."""
    if path != "metadata":
        return schema
    rules = [rule for rule in root.get("x-kubernetes-validations", [])
             if rule["message"].startswith("metadata.")]
    return {**OBJECT_METADATA, **schema, "x-kubernetes-validations": rules}


def walk(schema: Schema, path: str = "", required: bool = False) -> Iterator[Field]:
    """Every node under `schema`, parents before children, in the CRD's own order."""
    if path:
        yield Field(path, schema, required)
    needed = set(schema.get("required", []))
    for name, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}" if path else name, name in needed)
    if "items" in schema:
        yield from walk(schema["items"], path + "[]", False)


def transition_rules(schema: Schema, path: str = "") -> Iterator[tuple[str, str]]:
    """(path of the field a rule protects, the rule's message) for every CEL rule that
    compares a value with its old self: such a rule refuses any change of that field."""
    for rule in schema.get("x-kubernetes-validations", []):
        if "oldSelf" in rule["rule"]:
            yield path + rule.get("fieldPath", ""), rule["message"]
    for name, child in schema.get("properties", {}).items():
        yield from transition_rules(child, f"{path}.{name}" if path else name)
    if "items" in schema:
        yield from transition_rules(schema["items"], path + "[]")


def immutable_fields(schema: Schema) -> frozenset[str]:
    return frozenset(path for path, _ in transition_rules(schema))


def is_section(schema: Schema) -> bool:
    """An object that is documented by its fields rather than as a whole."""
    return schema.get("type") == "object" and "properties" in schema


def protected(path: str, immutable: frozenset[str]) -> bool:
    """PATH is immutable itself or lies inside an immutable field (a list's entries too)."""
    return any(path == field or path.startswith((field + ".", field + "[]"))
               for field in immutable)


def change_after_creation(path: str, schema: Schema, immutable: frozenset[str]) -> str:
    top = path.split(".", 1)[0].removesuffix("[]")
    if top == "status":
        return "written by the operator"
    if top != "spec":
        return "as for any Kubernetes object"
    if protected(path, immutable):
        return IMMUTABLE
    if is_section(schema):  # its own changes are its fields' changes
        mutable = [name for name, child in schema["properties"].items()
                   if change_after_creation(f"{path}.{name}", child, immutable) != IMMUTABLE]
        return "only " + ", ".join(f"`{name}`" for name in mutable) if mutable else IMMUTABLE
    return "yes"


def type_text(schema: Schema) -> str:
    if schema.get("x-kubernetes-int-or-string"):
        text = "integer or string"
    elif schema.get("type") == "array":
        text = f"list of {type_text(schema['items'])}"
        kind = schema.get("x-kubernetes-list-type")
        if kind == "map":
            keys = ", ".join(schema.get("x-kubernetes-list-map-keys", []))
            text += f", one per {keys}"
        elif kind == "set":
            text += ", each value once"
    elif "additionalProperties" in schema:
        text = f"map of {type_text(schema['additionalProperties'])}"
    else:
        text = str(schema.get("type", "any"))
    if "format" in schema:
        text += f" ({schema['format']})"
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        text += ", Kubernetes' own fields kept as given"
    if schema.get("nullable"):
        text += ", or null"
    return text


def code(text: str) -> str:
    """A Markdown code span that may itself hold a backtick."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def inline(value: Any) -> str:
    return code(json.dumps(value, ensure_ascii=False))


def plain(text: str) -> str:
    """CRD prose as Markdown: spans in backticks stay code, elsewhere the characters that
    Markdown would read as emphasis, links or HTML are escaped, and `|` cannot end a cell."""
    pieces = " ".join(text.split()).split("`")
    for index in range(0, len(pieces), 2):
        for char in "\\*_[]<>":
            pieces[index] = pieces[index].replace(char, "\\" + char)
    return "`".join(pieces).replace("|", "&#124;")


def allowed_values(schema: Schema) -> list[str]:
    found = []
    if "enum" in schema:
        found.append("one of " + ", ".join(inline(value) for value in schema["enum"]))
    bounds = (("minimum", "at least"), ("maximum", "at most"),
              ("minLength", "at least {} characters"), ("maxLength", "at most {} characters"),
              ("maxItems", "at most {} entries"))
    for key, words in bounds:
        if key in schema:
            value = schema[key]
            found.append(words.format(value) if "{}" in words else f"{words} {value}")
    if "pattern" in schema:
        found.append("matches " + code(schema["pattern"]))
    found.extend(plain(rule["message"]) for rule in schema.get("x-kubernetes-validations", [])
                 if "oldSelf" not in rule["rule"])
    return found


def nest(path: str, value: Any) -> Any:
    """The example placed where it goes in a document: `spec.env[].name` -> a list item."""
    for part in reversed(path.split(".")):
        name, is_item = part.removesuffix("[]"), part.endswith("[]")
        value = {name: [value] if is_item else value}
    return value


def example_text(field: Field) -> str:
    if "example" in field.schema:
        document = yaml.safe_dump(nest(field.path, field.schema["example"]),
                                  sort_keys=False, allow_unicode=True, width=88)
        return f"Example:\n\n```yaml\n{document}```"
    return "See the fields below." if is_section(field.schema) else "See the list above."


def default_text(schema: Schema) -> str:
    if "default" in schema:
        return inline(schema["default"])
    return "unset" if schema.get("nullable") else "none"


def anchor(path: str) -> str:
    return path.replace(".", "-").replace("[]", "-item").lower()


def summary_row(field: Field, immutable: frozenset[str]) -> str:
    change = change_after_creation(field.path, field.schema, immutable)
    required = "yes" if field.required else ""
    return (f"| [`{field.path}`](#{anchor(field.path)}) | {type_text(field.schema)} "
            f"| {required} | {default_text(field.schema)} | {change} |")


def field_section(field: Field, immutable: frozenset[str]) -> str:
    description = plain(str(field.schema.get("description", "")))
    rows = [
        ("type", type_text(field.schema)),
        ("required", "yes" if field.required else "no"),
        ("default", default_text(field.schema)),
        ("allowed", "; ".join(allowed_values(field.schema)) or "any value of its type"),
        ("can change after creation",
         change_after_creation(field.path, field.schema, immutable)),
    ]
    facts = "\n".join(f"- **{name}**: {value}" for name, value in rows)
    return (f"### `{field.path}` {{#{anchor(field.path)}}}\n\n{description}\n\n"
            f"{facts}\n\n{example_text(field)}\n")


def render(crd: dict[str, Any]) -> str:
    schema = root_schema(crd)
    immutable = immutable_fields(schema)
    fields = [Field(field.path, documented(field.path, field.schema, schema), field.required)
              for field in walk(schema)]
    parts = [
        "# Step reference\n",
        "<!-- Generated from crds/parallelrunsteps.yaml by tools/step_reference.py: "
        f"do not edit, run `{REGENERATE}`. -->\n",
        plain(str(schema["description"])) + "\n",
        "Every field of the `ParallelRunStep` resource, from its CustomResourceDefinition. "
        "`prs validate` applies the same rules offline. \"Can change after creation\" comes "
        "from the CRD's transition rules: the API server refuses an update that changes an "
        "immutable field. A path ending in `[]` is an entry of a list.\n",
        "| field | type | required | default | can change after creation |\n"
        "| --- | --- | --- | --- | --- |\n"
        + "\n".join(summary_row(field, immutable) for field in fields) + "\n",
    ]
    heading = ""
    for field in fields:
        top = field.path.split(".", 1)[0]
        group = f"`{top}`" if top in {"spec", "status"} else "The object"
        if group != heading:
            heading = group
            parts.append(f"## {group}\n")
        parts.append(field_section(field, immutable))
    return "\n".join(part for part in parts if part)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the committed page differs instead of writing it")
    args = parser.parse_args(argv)
    text = render(yaml.safe_load(CRD_PATH.read_text()))
    if args.check:
        current = REFERENCE_PATH.read_text() if REFERENCE_PATH.exists() else ""
        if current != text:
            print(f"{REFERENCE_PATH.relative_to(REPO)} is out of date: run {REGENERATE}")
            return 1
        return 0
    REFERENCE_PATH.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE_PATH.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
