"""metav1.Condition handling and status formatting. Pure."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

CONDITION_TYPES = ("Planned", "Complete", "Failed", "Suspended", "Reused", "CreateFailed")


def find(conditions: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def is_true(conditions: Sequence[Mapping[str, Any]], kind: str) -> bool:
    found = find(conditions, kind)
    return found is not None and found.get("status") == "True"


def set_condition(
    conditions: list[dict[str, Any]], kind: str, true: bool, reason: str, message: str,
    now: str, generation: int,
) -> list[dict[str, Any]]:
    """A new list; lastTransitionTime moves only when the status flips."""
    status = "True" if true else "False"
    old = find(conditions, kind)
    changed = old is None or old.get("status") != status
    condition = {
        "type": kind, "status": status, "reason": reason, "message": message[:32000],
        "lastTransitionTime": now if changed or old is None else old["lastTransitionTime"],
        "observedGeneration": generation,
    }
    rest = [c for c in conditions if c.get("type") != kind]
    return sorted([*rest, condition], key=lambda c: CONDITION_TYPES.index(c["type"])
                  if c["type"] in CONDITION_TYPES else len(CONDITION_TYPES))


def format_duration(elapsed: float) -> str:
    seconds = round(elapsed)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def rfc3339(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(int(epoch), datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.UTC).timestamp()
