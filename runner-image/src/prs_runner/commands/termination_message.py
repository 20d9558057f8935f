"""The runner's termination message: JSON the operator reads from the pod's status. Pure.

The kubelet keeps at most 4096 bytes of it and cuts the rest, which would leave JSON that
cannot be parsed; so the message is made to fit by shortening its longest texts (a
traceback keeps its end, where the exception is; other texts keep their start), never by
cutting the JSON."""

from __future__ import annotations

import json
from typing import Any

LIMIT_BYTES = 4000  # under the kubelet's 4096, with room to spare
MARK = "…"
SHORT = 64  # characters a text keeps at least: reasons, types and names stay whole
TAIL_KEYS = frozenset({"traceback"})  # the end of a traceback is what matters


def fit(message: dict[str, Any], limit: int = LIMIT_BYTES) -> str:
    """MESSAGE as JSON of at most LIMIT bytes (UTF-8): its longest strings shortened (never
    below SHORT characters: reasons and types stay whole), then its longest lists."""
    current = json.loads(json.dumps(message))  # a deep copy of plain data
    text = json.dumps(current)
    while len(text.encode()) > limit:
        path = longest_string(current)
        if path is None:
            if not shorten_longest_list(current):
                return json.dumps({"reason": message.get("reason", ""), "message": MARK})
            text = json.dumps(current)
            continue
        parent, key = path
        value: str = parent[key]
        # Cut what is still too much, but at most half of this text per step: the next
        # longest is cut next, so long texts share the room instead of one vanishing.
        excess = len(text.encode()) - limit + len(MARK.encode())
        keep = max(len(value) - min(excess, len(value) // 2 + 1), SHORT)
        if key in TAIL_KEYS:
            parent[key] = MARK + value[len(value) - keep:]
        else:
            parent[key] = value[:keep] + MARK
        text = json.dumps(current)
    return text


def shorten_longest_list(node: Any) -> bool:
    """Halve the longest list (of more than two elements) anywhere in NODE, its last element
    saying how many were left out; False when there is none."""
    best: list[Any] | None = None
    stack = [node]
    while stack:
        item = stack.pop()
        values = item.values() if isinstance(item, dict) else item
        for value in values:
            if isinstance(value, list) and len(value) > 2 and (
                    best is None or len(value) > len(best)):
                best = value
            if isinstance(value, dict | list):
                stack.append(value)
    if best is None:
        return False
    earlier = left_out_before(best)
    body = best[:-1] if earlier else best
    kept = len(body) // 2
    best[:] = [*body[:kept], f"{MARK} {len(body) - kept + earlier} more"]
    return True


def left_out_before(values: list[Any]) -> int:
    """How many elements an earlier halving left out (its mark ends the list), or 0."""
    last = values[-1]
    if isinstance(last, str) and last.startswith(f"{MARK} ") and last.endswith(" more"):
        count = last[len(MARK) + 1:-len(" more")]
        return int(count) if count.isdigit() else 0
    return 0


def longest_string(node: Any) -> tuple[Any, Any] | None:
    """(container, key) of the longest string anywhere in NODE that is longer than SHORT
    characters by more than the mark."""
    best: tuple[Any, Any] | None = None
    best_length = SHORT + len(MARK)
    stack = [node]
    while stack:
        item = stack.pop()
        pairs = item.items() if isinstance(item, dict) else (
            enumerate(item) if isinstance(item, list) else ())
        for key, value in pairs:
            if isinstance(value, str) and len(value) > best_length:
                best, best_length = (item, key), len(value)
            elif isinstance(value, dict | list):
                stack.append(value)
    return best
