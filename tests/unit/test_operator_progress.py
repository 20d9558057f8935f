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


@pytest.mark.parametrize(("body", "authorization", "message"), [
    ([1, 2], bearer(), "the body must be a JSON object"),
    ({"namespace": "ns"}, bearer(), "malformed report: 'name'"),
    (payload(report={"counts": {}}), bearer(), "malformed report: 'shard'"),
    (payload(report={"shard": 1, "counts": 7}), bearer(),
     "malformed report: 'int' object is not iterable"),
    (payload(), bearer(name="other"), "not authenticated for step ns/step"),
], ids=["not-an-object", "no-name", "no-shard", "counts-not-a-mapping", "wrong-step"])
def test_a_rejection_says_exactly_what_is_wrong(body: Any, authorization: str,
                                                message: str) -> None:
    with pytest.raises(ReportRejected) as caught:
        verify_report(KEY, body, authorization)
    assert str(caught.value) == message


def test_the_book_keeps_every_shard_of_a_step_apart_from_other_steps() -> None:
    book = ProgressBook()
    reports = {shard: {"shard": shard, "counts": {"miniBatchesSucceeded": shard}}
               for shard in (0, 1, 2)}
    for report in reports.values():
        book.record(verify_report(KEY, payload(report=report), bearer()))
    other = {**STEP, "name": "other", "report": REPORT}
    book.record(verify_report(KEY, other, bearer(name="other")))
    assert book.shards("ns", "step", "u-1") == reports
    assert book.shards("ns", "other", "u-1") == {1: REPORT}
    book.forget("ns", "step")
    book.forget("ns", "never-seen")  # forgetting an unknown step is harmless
    assert book.shards("ns", "step", "u-1") == {}
    assert book.shards("ns", "other", "u-1") == {1: REPORT}


@pytest.mark.parametrize(("report", "why"), [
    ({"shard": -1, "counts": {}}, "shard -1 is out of range"),
    ({"shard": 1000, "counts": {}}, "shard 1000 is out of range"),
    ({"shard": 0, "counts": {"itemsFailed": -5}}, "counts must be whole numbers >= 0"),
    ({"shard": 0, "counts": {"itemsFailed": 1.5}}, "counts must be whole numbers >= 0"),
    ({"shard": 0, "counts": {"itemsFailed": True}}, "counts must be whole numbers >= 0"),
    ({"shard": 0, "counts": {"itemsFailed": "9"}}, "counts must be whole numbers >= 0"),
])
def test_reports_out_of_bounds_are_rejected(report: dict[str, Any], why: str) -> None:
    from prs_operator.builders import progress_token as token_for
    from prs_operator.progress import ReportRejected as Rejected
    from prs_operator.progress import verify_report as verify

    payload = {"namespace": "ns", "name": "s", "uid": "u", "report": report}
    with pytest.raises(Rejected, match=why):
        verify(b"key", payload, f"Bearer {token_for(b'key', 'ns', 's', 'u')}")
