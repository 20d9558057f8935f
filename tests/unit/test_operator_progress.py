"""Progress reports from runner pods (pure): the per-step HMAC and the bookkeeping."""

from __future__ import annotations

from typing import Any

import pytest

from prs_operator.builders import progress_token
from prs_operator.progress import ProgressBook, ReportRejected, verify_report

KEY = b"operator-key"
STEP = {"namespace": "ns", "name": "step", "uid": "u-1"}
REPORT = {"shard": 1, "counts": {"miniBatchesSucceeded": 3}}


def payload(**changes: Any) -> dict[str, Any]:
    return {**STEP, "report": REPORT, **changes}


def bearer(namespace: str = "ns", name: str = "step", uid: str = "u-1", key: bytes = KEY) -> str:
    return f"Bearer {progress_token(key, namespace, name, uid)}"


def test_a_genuine_report_is_accepted() -> None:
    report = verify_report(KEY, payload(), bearer())
    assert (report.namespace, report.name, report.uid, report.shard) == ("ns", "step", "u-1", 1)


@pytest.mark.parametrize(("body", "authorization", "why"), [
    (payload(), "", "not authenticated"),
    (payload(), "Bearer " + "0" * 64, "not authenticated"),
    (payload(), bearer(name="other"), "not authenticated"),
    (payload(), bearer(uid="u-2"), "not authenticated"),  # the step was recreated
    (payload(), bearer(key=b"another-key"), "not authenticated"),
    (payload(), bearer().replace("Bearer", "Basic"), "not authenticated"),
    (payload(report={"counts": {}}), bearer(), "malformed"),
    (payload(report={"shard": "x", "counts": {}}), bearer(), "malformed"),
    ({"namespace": "ns"}, bearer(), "malformed"),
    ([1, 2], bearer(), "JSON object"),
])
def test_forged_or_malformed_reports_are_rejected(body: Any, authorization: str, why: str) -> None:
    with pytest.raises(ReportRejected, match=why):
        verify_report(KEY, body, authorization)


def test_the_book_keeps_the_newest_report_per_shard_and_forgets_an_old_uid() -> None:
    book = ProgressBook()
    book.record(verify_report(KEY, payload(), bearer()))
    newer = {"shard": 1, "counts": {"miniBatchesSucceeded": 5}}
    book.record(verify_report(KEY, payload(report=newer), bearer()))
    assert book.shards("ns", "step", "u-1") == {1: newer}
    assert book.shards("ns", "step", "u-2") == {}  # a recreated step starts afresh
    recreated = {**STEP, "uid": "u-2", "report": REPORT}
    book.record(verify_report(KEY, recreated, bearer(uid="u-2")))
    assert book.shards("ns", "step", "u-1") == {}
    book.forget("ns", "step")
    assert book.shards("ns", "step", "u-2") == {}
