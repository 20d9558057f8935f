"""The default number of worker processes: one per CPU a shard may use."""

from __future__ import annotations

import os

import pytest

from prs_runner.execution.cpu_share import (
    cpus_from,
    local_process_count,
    quota_cpus,
    usable_cpus,
)

AFFINITY = "the CPUs this process may run on"
LIMIT = "the container's CPU limit"
REQUEST = "the container's CPU request"


@pytest.mark.parametrize(("quota", "period", "expected"), [
    ("200000", "100000", 2), ("150000", "100000", 2), ("50000", "100000", 1),
    ("-1", "100000", None), ("max", "100000", None), (None, None, None), ("100000", "0", None),
    ("0", "100000", None),
])
def test_quota_cpus(quota: str | None, period: str | None, expected: int | None) -> None:
    assert quota_cpus(quota, period) == expected


@pytest.mark.parametrize(("args", "expected"), [
    ((64, None, None, None, None), (64, AFFINITY)),
    ((64, "max 100000", None, None, None), (64, AFFINITY)),  # v2 without a limit
    ((64, "400000 100000", None, None, None), (4, LIMIT)),
    ((64, None, "250000", "100000", None), (3, LIMIT)),  # v1, rounded up
    ((64, None, "-1", "100000", None), (64, AFFINITY)),
    ((64, "400000 100000", None, None, "2"), (2, REQUEST)),  # the request is smaller
    ((64, "200000 100000", None, None, "8"), (2, LIMIT)),
    ((64, None, None, None, "0"), (64, AFFINITY)),  # no request: the downward API says 0
    ((64, None, None, None, "1.5"), (64, AFFINITY)),  # not whole CPUs: not from the API
    ((2, None, None, None, "16"), (2, AFFINITY)),
    ((0, None, None, None, None), (1, AFFINITY)),  # at least one
    ((64, "garbage", "300000", "100000", None), (3, LIMIT)),  # v2 unreadable: v1
], ids=["affinity", "v2-unlimited", "v2-limit", "v1-limit", "v1-unlimited", "request",
        "limit-below-request", "no-request", "fraction", "affinity-below", "at-least-one",
        "v2-garbage"])
def test_cpus_from(args: tuple[int, str | None, str | None, str | None, str | None],
                   expected: tuple[int, str]) -> None:
    assert cpus_from(*args) == expected


def test_this_machine() -> None:
    cpus, _ = usable_cpus({})
    assert 1 <= cpus <= len(os.sched_getaffinity(0))
    assert usable_cpus({"PRS_CPU_REQUEST": "1"}) == (1, REQUEST)


@pytest.mark.parametrize("node_count", [1, 2, 3, 1000])
def test_local_shards_share_the_machine(node_count: int) -> None:
    cpus, _ = usable_cpus({})
    count, why = local_process_count(node_count, {})
    assert count == max(cpus // node_count, 1)
    assert why.endswith(f": {cpus}, over {node_count} shard(s)")
