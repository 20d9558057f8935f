"""Best-effort live progress from a shard pod to the operator's endpoint.

A background thread posts the newest report; a slow or unreachable operator never slows the
shard, and the final counts travel in the termination message anyway."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Mapping
from typing import Any

TIMEOUT_SECONDS = 2.0


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
        while True:
            with self.wake:
                while self.latest is None and not self.closed:
                    self.wake.wait()
                report, self.latest = self.latest, None
                closing = self.closed
            if report is not None:
                self.post(report)
            if closing:
                return

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
