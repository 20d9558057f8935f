"""YAML as a step reads it: strictly (no key given twice, no aliases, no deep nesting), for
step files and `--set` values. Only `prs` reads YAML; a shard's process never imports this
(PyYAML alone costs some 20 ms of every start).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import yaml

from prs_runner.step.spec import (
    LIST_FIELDS,
    NULLABLE_FIELDS,
    OBJECT_FIELDS,
    SCALAR_FIELDS,
    SpecError,
)


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing what would make a step mean something unintended:
    a key given twice (PyYAML keeps the last one silently) and aliases (`*name`, which a
    "billion laughs" document uses to blow up; a step never needs them)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.constructor.ConstructorError(
                None, None, f"aliases (*{event.anchor}) are not allowed in a step",
                event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, StrictLoader.construct_mapping)


MAX_NESTING = 64  # levels of mappings and lists; a step needs 6


def load_yaml(text: str) -> Any:
    """YAML as a step is read: yaml.YAMLError for duplicate keys and aliases too, and for
    nesting deeper than MAX_NESTING (deep enough to exhaust Python's recursion limit in the
    parser, or in any code that walks the document after it)."""
    try:
        document = yaml.load(text, Loader=StrictLoader)
    except RecursionError:
        raise NestedTooDeeply() from None
    if nesting(document) > MAX_NESTING:
        raise NestedTooDeeply()
    return document


class NestedTooDeeply(yaml.YAMLError):
    problem = f"nested more than {MAX_NESTING} levels deep"

    def __str__(self) -> str:
        return self.problem


def nesting(value: Any) -> int:
    """How many mappings and lists deep VALUE goes (without recursion: it may be deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def coerce_override(path: str, text: str) -> Any:
    """`--set path=text`: the value typed like the field it sets."""
    kind = SCALAR_FIELDS.get(path)
    if kind is None and path not in LIST_FIELDS | OBJECT_FIELDS:
        known = ", ".join(sorted([*SCALAR_FIELDS, *LIST_FIELDS, *OBJECT_FIELDS]))
        raise SpecError([f"--set {path}: unknown field (known: {known})"])
    if kind in ("str", "size"):
        return text
    if not text.strip():
        hint = " (null resets it)" if path in NULLABLE_FIELDS else ""
        raise SpecError([f"--set {path}=: empty value; give one{hint}"])
    try:
        value = load_yaml(text)
    except yaml.YAMLError as error:
        problem = str(getattr(error, "problem", None) or error).splitlines()[0]
        raise SpecError([f"--set {path}={text}: not a valid value ({problem})"]) from None
    if kind == "int" and isinstance(value, str) and text.lower() in ("null", "none"):
        return None
    return value


def apply_overrides(spec: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    out = copy.deepcopy(spec)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise SpecError([f"--set {item}: expected key=value"])
        path = key.removeprefix("spec.")
        node = out
        parts = path.split(".")
        value = coerce_override(path, text)
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out
