"""The per-shard table in status.shards.table: which shards need a look, and what their
newest pod says. Table-driven over pod views."""

from __future__ import annotations

from typing import Any

import pytest

from prs_operator.observation import JobView, PodView
from prs_operator.pass_state import progress_only
from prs_operator.pod_reports import (
    MAX_TABLE_ROWS,
    ShardRow,
    failure_text,
    final_reports,
    shard_row,
    shard_table,
)


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


def test_a_row_is_written_with_every_column() -> None:
    row = ShardRow(3, "p", "Pending", "Unschedulable", 1, "no node")
    assert row.to_dict() == {"shard": 3, "pod": "p", "phase": "Pending",
                             "reason": "Unschedulable", "restarts": 1, "message": "no node"}


@pytest.mark.parametrize(("newest", "report", "row"), [
    pytest.param(pod(0, "Failed", exit_code=1, reason="Error", started=True,
                     message={"message": "x" * 400}), None,
                 ShardRow(0, "s-run-0-1", "Failed", "Error", 2, "x" * 300),
                 id="a long message is cut at 300"),
    pytest.param(pod(0, "Failed", exit_code=2, started=True), None,
                 ShardRow(0, "s-run-0-1", "Failed", "Error", 2, "exit code 2"),
                 id="no reason, no message"),
    pytest.param(pod(0, "Succeeded", started=True,
                     message={"counts": {"miniBatchesSucceeded": 7}}), None,
                 ShardRow(0, "s-run-0-1", "Succeeded", "Retried", 2, "7 mini-batches done"),
                 id="retried and done: its own final counts"),
    pytest.param(pod(0, "Running", started=True), None,
                 ShardRow(0, "s-run-0-1", "Running", "Retried", 2, ""),
                 id="retried, no counts yet"),
    pytest.param(pod(0, "Pending", waiting="ErrImagePull: a: b"), None,
                 ShardRow(0, "s-run-0-1", "Pending", "ErrImagePull", 2, "a: b"),
                 id="only the first colon splits reason from message"),
])
def test_shard_row(newest: PodView, report: dict[str, Any] | None, row: ShardRow) -> None:
    assert shard_row(0, newest, 2, report) == row


JOB = JobView("s-run", "run", failed_reason="BackoffLimitExceeded", failed_message="too many")


@pytest.mark.parametrize(("pods", "limit", "text"), [
    pytest.param([pod(0, "Failed", reason="OOMKilled", exit_code=137)], "4Gi",
                 "OOMKilled: run pod s-run-0-1 used more memory than its limit "
                 "(resources.limits.memory=4Gi); raise the limit or use less memory per process",
                 id="oom with the limit"),
    pytest.param([pod(0, "Failed", reason="OOMKilled", exit_code=137)], None,
                 "OOMKilled: run pod s-run-0-1 used more memory than its limit; raise the "
                 "limit or use less memory per process", id="oom without a limit"),
    pytest.param([pod(0, "Failed", exit_code=1, raw_message="Traceback\n  boom\nKeyError: 'x'\n")],
                 None, "run pod s-run-0-1 exited with code 1: KeyError: 'x'",
                 id="the last line of an unparsed message"),
    pytest.param([pod(0, "Failed", exit_code=3, message={"error": "bad plan"})], None,
                 "run pod s-run-0-1 exited with code 3: bad plan", id="a parsed message's error"),
    pytest.param([pod(0, "Failed", exit_code=3, message={"message": "m", "error": "e"})], None,
                 "run pod s-run-0-1 exited with code 3: m", id="its message first"),
    pytest.param([pod(0, "Failed", exit_code=9)], None, "run pod s-run-0-1 exited with code 9:",
                 id="nothing to add"),
    pytest.param([pod(0, "Running")], None,
                 "run Job s-run failed: BackoffLimitExceeded too many", id="no failed pod"),
    pytest.param([PodView("m", "merge", None, "Failed", 1, None, "merge broke")], None,
                 "run Job s-run failed: BackoffLimitExceeded too many", id="another role's pod"),
])
def test_failure_text(pods: list[PodView], limit: str | None, text: str) -> None:
    assert failure_text(pods, "run", JOB, limit) == text
