"""Best-effort live progress from a shard pod to the operator's endpoint.

A background thread posts the newest report; a slow or unreachable operator never slows the
shard, and the final counts travel in the termination message anyway."""

from __future__ import annotations

import json
import random
import threading
import urllib.request
from collections.abc import Mapping
from typing import Any

TIMEOUT_SECONDS = 2.0
# Reports go out when the counts changed, at most every MIN_INTERVAL seconds (with jitter,
# so 500 shards started together do not post in step); the final one always goes.
MIN_INTERVAL = 3.0
JITTER = 0.3


def worth_sending(report: Mapping[str, Any], sent: Mapping[str, Any] | None) -> bool:
    """A final report, or counts that changed since the last one sent."""
    if report.get("final") or sent is None:
        return True
    return bool(report.get("counts") != sent.get("counts") or
                report.get("status") != sent.get("status"))


class ProgressPoster:
    def __init__(self, url: str, token: str, step: Mapping[str, str]) -> None:
        self.url, self.token, self.step = url, token, dict(step)
        self.latest: dict[str, Any] | None = None
        self.wake = threading.Condition()
        self.closed = False
        self.failures = 0
        self.thread = threading.Thread(target=self.loop, name="progress-poster", daemon=True)
        self.thread.start()

    def offer(self, report: Mapping[str, Any]) -> None:
        with self.wake:
            self.latest = dict(report)
            self.wake.notify()

    def close(self) -> None:
        with self.wake:
            self.closed = True
            self.wake.notify()
        self.thread.join(TIMEOUT_SECONDS + 1)

    def loop(self) -> None:
        sent: Mapping[str, Any] | None = None
        while True:
            with self.wake:
                while self.latest is None and not self.closed:
                    self.wake.wait()
                report, self.latest = self.latest, None
                closing = self.closed
            if report is not None and worth_sending(report, sent):
                self.post(report)
                sent = report
                if not closing:
                    self.pause(MIN_INTERVAL * random.uniform(1 - JITTER, 1 + JITTER))
            if closing:
                return

    def pause(self, seconds: float) -> None:
        """Wait before the next post; a close ends the wait (the final report goes now)."""
        with self.wake:
            self.wake.wait_for(lambda: self.closed, timeout=seconds)

    def post(self, report: Mapping[str, Any]) -> None:
        body = json.dumps({**self.step, "report": report}).encode()
        request = urllib.request.Request(
            self.url, data=body, method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):
                pass
        except OSError:
            self.failures += 1
