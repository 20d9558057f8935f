"""Live progress reports from runner pods: authentication and bookkeeping. Pure.

A pod proves which step it works for with an HMAC of the step's namespace, name and UID
under the operator's key; the token is handed to the step's pods only, so one step cannot
report for another and nobody without the key can forge a report."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prs_operator.builders import progress_token

MAX_SHARDS = 1000  # nodeCount's upper bound


class ReportRejected(ValueError):
    pass


@dataclass(frozen=True)
class Report:
    namespace: str
    name: str
    uid: str
    shard: int
    body: Mapping[str, Any]


def verify_report(keys: bytes | Sequence[bytes], payload: Any, authorization: str) -> Report:
    """The report in PAYLOAD, if its token was made with one of KEYS (the current key, and
    the one before it while pods started under it still run)."""
    if not isinstance(payload, dict):
        raise ReportRejected("the body must be a JSON object")
    try:
        namespace, name, uid = (str(payload[k]) for k in ("namespace", "name", "uid"))
        report = payload["report"]
        shard = int(report["shard"])
        counts = dict(report["counts"])
    except (KeyError, TypeError, ValueError) as error:
        raise ReportRejected(f"malformed report: {error}") from None
    if not 0 <= shard < MAX_SHARDS:
        raise ReportRejected(f"shard {shard} is out of range")
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in counts.values()):
        raise ReportRejected("counts must be whole numbers >= 0")
    scheme, _, token = authorization.partition(" ")
    candidates = (keys,) if isinstance(keys, bytes) else tuple(keys)
    valid = [hmac.compare_digest(token.encode(), progress_token(key, namespace, name,
                                                                uid).encode())
             for key in candidates]
    if scheme != "Bearer" or not any(valid):
        raise ReportRejected(f"not authenticated for step {namespace}/{name}")
    return Report(namespace, name, uid, shard, report)


@dataclass
class ProgressBook:
    """The newest report of every shard of every step; a step recreated under the same name
    (new UID) starts a fresh page."""

    pages: dict[tuple[str, str], tuple[str, dict[int, Mapping[str, Any]]]] = field(
        default_factory=dict)

    def record(self, report: Report) -> None:
        key = (report.namespace, report.name)
        uid, shards = self.pages.get(key, (report.uid, {}))
        if uid != report.uid:
            shards = {}
        shards[report.shard] = report.body
        self.pages[key] = (report.uid, shards)

    def shards(self, namespace: str, name: str, uid: str) -> Mapping[int, Mapping[str, Any]]:
        found_uid, shards = self.pages.get((namespace, name), (uid, {}))
        return shards if found_uid == uid else {}

    def forget(self, namespace: str, name: str) -> None:
        self.pages.pop((namespace, name), None)
