"""`prs logs`: which pods, under which prefix, lines of several pods in time order, and when
a follow may stop. Table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from prs_operator.pod_logs import (
    LogSource,
    interleave,
    log_sources,
    newest_per_label,
    role_finished,
    split_timestamp,
)


def pod(name: str, role: str, index: int | None, created: str, phase: str = "Running"
        ) -> dict[str, Any]:
    annotations = {} if index is None else {"batch.kubernetes.io/job-completion-index":
                                            str(index)}
    state: dict[str, Any] = {"running": {}} if phase == "Running" else {}
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations,
                         "labels": {"parallelrun.io/role": role}},
            "status": {"phase": phase, "containerStatuses": [{"state": state}]}}


PODS = [
    pod("s-run-1-b", "run", 1, "2026-01-01T00:02:00Z"),
    pod("s-run-0", "run", 0, "2026-01-01T00:01:00Z"),
    pod("s-run-1-a", "run", 1, "2026-01-01T00:01:00Z", phase="Failed"),
    pod("s-run-2", "run", 2, "2026-01-01T00:03:00Z", phase="Pending"),
    pod("s-plan", "plan", None, "2026-01-01T00:00:00Z", phase="Succeeded"),
]


@pytest.mark.parametrize(("role", "shard", "pods"), [
    ("run", None, ["s-run-0", "s-run-1-a", "s-run-1-b", "s-run-2"]),
    ("run", 1, ["s-run-1-a", "s-run-1-b"]),
    ("run", 7, []),
    ("plan", None, ["s-plan"]),
    ("merge", None, []),
])
def test_log_sources_oldest_first(role: str, shard: int | None, pods: list[str]) -> None:
    assert [s.pod for s in log_sources(PODS, role, shard)] == pods


def test_newest_pod_of_each_shard_in_shard_order() -> None:
    newest = newest_per_label(log_sources(PODS, "run", None))
    assert [(s.label, s.pod, s.started) for s in newest] == [
        ("shard-0", "s-run-0", True), ("shard-1", "s-run-1-b", True),
        ("shard-2", "s-run-2", False)]


def test_shards_sort_by_number_not_text() -> None:
    sources = [LogSource(f"shard-{i}", f"p{i}", 0.0, True) for i in (10, 2, 1)]
    assert [s.label for s in newest_per_label(sources)] == ["shard-1", "shard-2", "shard-10"]


@pytest.mark.parametrize(("line", "split"), [
    ("2026-01-01T00:00:01.5Z hello world", ("2026-01-01T00:00:01.500000000", "hello world")),
    ("2026-01-01T00:00:01.123456789Z x", ("2026-01-01T00:00:01.123456789", "x")),
    ("2026-01-01T00:00:01Z ", ("2026-01-01T00:00:01.000000000", "")),
    ("no stamp here", ("", "no stamp here")),
])
def test_split_timestamp(line: str, split: tuple[str, str]) -> None:
    assert split_timestamp(line) == split


def test_interleave_orders_by_time_and_keeps_each_pods_order() -> None:
    first = ("2026-01-01T00:00:01.1Z a1\n"
             "2026-01-01T00:00:03Z a2\n"
             "a2 continued\n")
    second = ("2026-01-01T00:00:01.05Z b1\n"
              "2026-01-01T00:00:03Z b2\n")
    assert interleave([("shard-0", first), ("shard-1", second)]) == [
        "[shard-1] b1", "[shard-0] a1", "[shard-0] a2", "[shard-0] a2 continued",
        "[shard-1] b2"]
    assert interleave([("shard-0", first)], timestamps=True)[0] == (
        "[shard-0] 2026-01-01T00:00:01.1Z a1")


@pytest.mark.parametrize(("status", "role", "finished"), [
    ({}, "run", False),
    ({"completionTime": "2026-01-01T00:00:00Z"}, "run", True),
    ({"completionTime": "2026-01-01T00:00:00Z"}, "merge", True),
    ({"runCompletionTime": "2026-01-01T00:00:00Z"}, "run", True),
    ({"runCompletionTime": "2026-01-01T00:00:00Z"}, "merge", False),
    ({"conditions": [{"type": "Planned", "status": "True"}]}, "plan", True),
    ({"conditions": [{"type": "Planned", "status": "False"}]}, "plan", False),
])
def test_role_finished(status: dict[str, Any], role: str, finished: bool) -> None:
    assert role_finished(status, role) is finished
