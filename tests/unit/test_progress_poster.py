"""A shard pod posts progress on change, at most every few seconds, and always its final
report: 500 shards must not flood the operator."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from prs_runner.execution import progress_report
from prs_runner.execution.progress_report import ProgressPoster, worth_sending


@pytest.mark.parametrize(("report", "sent", "send"), [
    ({"counts": {"a": 1}}, None, True),
    ({"counts": {"a": 1}}, {"counts": {"a": 1}}, False),
    ({"counts": {"a": 2}}, {"counts": {"a": 1}}, True),
    ({"counts": {"a": 1}, "status": "failed"}, {"counts": {"a": 1}}, True),
    ({"counts": {"a": 1}, "final": True}, {"counts": {"a": 1}}, True),
])
def test_worth_sending(report: dict[str, Any], sent: dict[str, Any] | None, send: bool) -> None:
    assert worth_sending(report, sent) is send


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/progress", received
    server.shutdown()


def test_a_burst_of_reports_is_one_post_and_the_final_one_always_goes(
    endpoint: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress_report, "MIN_INTERVAL", 30.0)
    url, received = endpoint
    poster = ProgressPoster(url, "t", {"namespace": "ns", "name": "s", "uid": "u"})
    poster.offer({"shard": 0, "counts": {"miniBatchesSucceeded": 0}})
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.01)
    for done in range(1, 50):  # every 0.25 s in a real shard; within the interval here
        poster.offer({"shard": 0, "counts": {"miniBatchesSucceeded": done}})
        time.sleep(0.002)
    poster.offer({"shard": 0, "counts": {"miniBatchesSucceeded": 50}, "final": True})
    poster.close()
    assert len(received) == 2
    assert received[-1]["report"]["final"] is True
    assert received[-1]["report"]["counts"] == {"miniBatchesSucceeded": 50}
