"""The termination message is always valid JSON within the kubelet's limit, and what matters
survives: counts whole, a traceback's end, a message's start."""

from __future__ import annotations

import json
from typing import Any

import pytest

from prs_runner.commands.termination_message import LIMIT_BYTES, MARK, fit, longest_string

COUNTS = {"miniBatchesSucceeded": 120, "miniBatchesFailed": 3, "itemsSucceeded": 1190,
          "itemsFailed": 10, "rows": 1190}


def message(error_message: str = "boom", traceback: str = "Traceback...\nValueError: boom",
            items: list[str] | None = None) -> dict[str, Any]:
    return {"status": "failed", "reason": "ErrorThresholdExceeded", "message": "too many",
            "counts": COUNTS, "firstError": {"type": "KeyError", "message": error_message,
                                             "traceback": traceback, "items": items or []}}


def test_a_small_message_is_unchanged() -> None:
    assert fit(message()) == json.dumps(message())


@pytest.mark.parametrize("case", [
    message(error_message="k" * 5000),
    message(traceback="frame\n" * 2000 + "KeyError: 'the last line'"),
    message(items=[f"/data/some/long/path/{i:06d}.png" for i in range(500)]),
    message(error_message="é" * 3000, traceback="ü" * 3000),
    message(error_message="x" * 100_000, traceback="y" * 100_000, items=["z" * 10_000] * 30),
], ids=["long-message", "long-traceback", "many-items", "non-ascii", "everything-huge"])
def test_a_large_message_fits_as_valid_json_and_keeps_the_counts(case: dict[str, Any]) -> None:
    text = fit(case)
    assert len(text.encode()) <= LIMIT_BYTES
    parsed = json.loads(text)
    assert parsed["counts"] == COUNTS
    assert (parsed["status"], parsed["reason"]) == ("failed", "ErrorThresholdExceeded")
    assert parsed["firstError"]["type"] == "KeyError"


def test_a_traceback_keeps_its_end_and_a_message_its_start() -> None:
    parsed = json.loads(fit(message(error_message="start " + "k" * 5000,
                                    traceback="frame\n" * 2000 + "KeyError: 'last'")))
    assert parsed["firstError"]["message"].startswith("start ")
    assert parsed["firstError"]["message"].endswith(MARK)
    assert parsed["firstError"]["traceback"].endswith("KeyError: 'last'")
    assert parsed["firstError"]["traceback"].startswith(MARK)


def test_a_smaller_limit_is_honoured() -> None:
    assert len(fit(message(error_message="k" * 800), limit=500).encode()) <= 500


def test_a_message_of_nothing_but_keys_falls_back_to_a_stub() -> None:
    many_keys = {f"key{i}": i for i in range(2000)} | {"reason": "X"}
    assert json.loads(fit(many_keys, limit=200)) == {"reason": "X", "message": MARK}


LONG, LONGER = "x" * 100, "x" * 200


@pytest.mark.parametrize(("node", "found"), [
    ({"a": LONG, "b": {"c": LONGER}}, ("b", "c")),
    ({"a": ["x", LONG]}, ("a", 1)),
    ({"a": 1, "b": [2]}, None),
    ({"reason": "x" * 64}, None),  # short texts are never cut
])
def test_longest_string(node: dict[str, Any], found: tuple[str, Any] | None) -> None:
    result = longest_string(node)
    if found is None:
        assert result is None
        return
    assert result is not None
    container, key = result
    outer, inner = found
    assert container is node[outer]
    assert key == inner


def test_many_short_items_are_halved_and_counted() -> None:
    parsed = json.loads(fit(message(items=[f"item{i:05d}" for i in range(2000)])))
    items = parsed["firstError"]["items"]
    assert items[0] == "item00000"
    kept = len(items) - 1
    assert items[-1] == f"{MARK} {2000 - kept} more"
    assert items[:kept] == [f"item{i:05d}" for i in range(kept)]
