"""The per-shard table in status.shards.table: which shards need a look, and what their
newest pod says. Table-driven over pod views."""

from __future__ import annotations

from typing import Any

import pytest

from prs_operator.observation import PodView
from prs_operator.pass_state import progress_only
from prs_operator.pod_reports import MAX_TABLE_ROWS, ShardRow, final_reports, shard_table


def pod(index: int, phase: str, created: float = 1.0, name: str = "", **fields: Any) -> PodView:
    return PodView(name or f"s-run-{index}-{int(created)}", "run", index, phase,
                   fields.pop("exit_code", None), fields.pop("message", None),
                   created=created, **fields)


@pytest.mark.parametrize(("pods", "live", "rows"), [
    pytest.param([pod(0, "Running", started=True), pod(1, "Succeeded", started=True)], {}, [],
                 id="healthy first pods: nothing to look at"),
    pytest.param([pod(0, "Pending", waiting="ImagePullBackOff: Back-off pulling image x")], {},
                 [ShardRow(0, "s-run-0-1", "Pending", "ImagePullBackOff",
                           0, "Back-off pulling image x")], id="waiting to start"),
    pytest.param([pod(2, "Pending")], {}, [ShardRow(2, "s-run-2-1", "Pending", "Pending", 0, "")],
                 id="pending without a reason yet"),
    pytest.param([pod(1, "Failed", exit_code=137, reason="OOMKilled", started=True)], {},
                 [ShardRow(1, "s-run-1-1", "Failed", "OOMKilled", 0, "exit code 137")],
                 id="oom-killed"),
    pytest.param([pod(1, "Failed", exit_code=3, reason="Error", started=True,
                      message={"reason": "InitFailed", "message": "init() failed: no GPU"})], {},
                 [ShardRow(1, "s-run-1-1", "Failed", "InitFailed", 0, "init() failed: no GPU")],
                 id="failed with the runner's reason"),
    pytest.param([pod(3, "Failed", created=1.0, exit_code=1, reason="Error", started=True),
                  pod(3, "Running", created=2.0, started=True)],
                 {3: {"counts": {"miniBatchesSucceeded": 4}}},
                 [ShardRow(3, "s-run-3-2", "Running", "Retried", 1, "4 mini-batches done")],
                 id="retried: the newest pod, live counts"),
    pytest.param([pod(0, "Running", started=True), pod(None, "Pending")], {}, [],  # type: ignore[arg-type]
                 id="a pod without an index is not a shard"),
])
def test_shard_table(pods: list[PodView], live: dict[int, Any], rows: list[ShardRow]) -> None:
    assert shard_table(pods, live) == (rows, 0)


def test_the_table_is_capped_and_counts_the_rest() -> None:
    pods = [pod(i, "Pending") for i in range(MAX_TABLE_ROWS + 5)]
    rows, more = shard_table(pods, {})
    assert [r.shard for r in rows] == list(range(MAX_TABLE_ROWS)) and more == 5


def test_final_reports_prefer_a_succeeded_pod_over_a_failed_one() -> None:
    failed = pod(0, "Failed", created=1.0, message={"counts": {"miniBatchesSucceeded": 1}})
    done = pod(0, "Succeeded", created=2.0, message={"counts": {"miniBatchesSucceeded": 5}})
    for order in ([failed, done], [done, failed]):
        assert final_reports(order) == {0: {"counts": {"miniBatchesSucceeded": 5}}}
    assert final_reports([pod(1, "Running", message={"counts": {}})]) == {}


@pytest.mark.parametrize(("old", "new", "expected"), [
    pytest.param({"progress": "1/10"}, {"progress": "2/10"}, True, id="counts"),
    pytest.param({"message": "a", "shards": {"active": 2}}, {"message": "b", "shards": {}}, True,
                 id="message and shards"),
    pytest.param({"phase": "Running"}, {"phase": "Merging"}, False, id="phase"),
    pytest.param({}, {"runCompletionTime": "t"}, False, id="a new time"),
    pytest.param({"conditions": []}, {"conditions": [{"type": "Failed"}]}, False,
                 id="conditions"),
    pytest.param({"progress": "1/10"}, {"progress": "1/10"}, True, id="nothing"),
])
def test_only_progress_fields_may_wait_for_the_next_write(
    old: dict[str, Any], new: dict[str, Any], expected: bool
) -> None:
    assert progress_only(old, new) is expected
