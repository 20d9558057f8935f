"""What `prs logs NAME` prints: which pods' logs, under which prefix, in which order. Pure;
prs_operator.step_inspection reads the logs."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prs_operator.conditions import is_true
from prs_operator.observation import view_pod

ROLES = ("plan", "reuse", "run", "merge")
STARTED_PHASES = ("Running", "Succeeded", "Failed")  # a container ran: there is a log


@dataclass(frozen=True)
class LogSource:
    label: str  # shard-0, plan, merge ...
    pod: str
    created: float
    started: bool


def label_of(role: str, index: int | None) -> str:
    return f"shard-{index}" if role == "run" and index is not None else role


def log_sources(pods: Sequence[Mapping[str, Any]], role: str,
                shard: int | None) -> list[LogSource]:
    """Every pod of ROLE (of shard SHARD only, when given), oldest first."""
    found = []
    for body in pods:
        view = view_pod(body)
        if view.role != role or (shard is not None and view.index != shard):
            continue
        found.append(LogSource(label_of(role, view.index), view.name, view.created,
                               view.started or view.phase in STARTED_PHASES))
    return sorted(found, key=lambda source: (source.created, source.pod))


def newest_per_label(sources: Sequence[LogSource]) -> list[LogSource]:
    """A retried shard's newest pod: the one whose log says how the shard is doing."""
    newest: dict[str, LogSource] = {}
    for source in sources:
        newest[source.label] = source  # sources are oldest first
    return sorted(newest.values(), key=lambda source: shard_order(source.label))


def shard_order(label: str) -> tuple[int, int, str]:
    role, _, index = label.partition("-")
    return (ROLES.index("run") if role == "shard" else ROLES.index(label)
            if label in ROLES else len(ROLES), int(index) if index.isdigit() else -1, label)


def split_timestamp(line: str) -> tuple[str, str]:
    """A line of a log read with timestamps=true → (sortable time, text). The API writes
    RFC 3339 with up to nine digits of fraction and drops trailing zeros; the key pads it."""
    stamp, _, text = line.partition(" ")
    if len(stamp) < 20 or stamp[4] != "-" or not stamp.endswith("Z"):
        return "", line  # not a timestamp (a line the kubelet wrapped): keeps its place
    whole, _, fraction = stamp[:-1].partition(".")
    return f"{whole}.{fraction.ljust(9, '0')}", text


def prefixed(label: str, text: str) -> str:
    return f"[{label}] {text}"


def interleave(logs: Iterable[tuple[str, str]], timestamps: bool = False) -> list[str]:
    """(label, log read with timestamps) of each pod → one list of prefixed lines in time
    order; a pod's own lines keep their order."""
    streams = []
    for number, (label, text) in enumerate(logs):
        lines: list[tuple[str, int, int, str]] = []
        last = ""
        for line in text.splitlines():
            stamp, body = split_timestamp(line)
            last = stamp or last  # an unstamped line goes right after the one before it
            lines.append((last, number, len(lines), prefixed(label, line if timestamps
                                                              else body)))
        streams.append(lines)
    return [line for *_, line in heapq.merge(*streams)]


def role_finished(status: Mapping[str, Any], role: str) -> bool:
    """No more pods of ROLE will come: what `prs logs -f` waits for before it stops."""
    if status.get("completionTime"):
        return True
    if role == "plan":
        return is_true(status.get("conditions") or [], "Planned")
    if role == "run":
        return bool(status.get("runCompletionTime"))
    return False
