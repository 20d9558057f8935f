"""The time a run has left, from its rate so far: status.eta, the ETA column of
`kubectl get prs`. Pure."""

from __future__ import annotations

from prs_operator.conditions import format_duration


def eta_text(done: int, total: int, since: float | None, now: float) -> str:
    """DONE of TOTAL mini-batches done (succeeded or failed) in the NOW - SINCE seconds since
    the run began, the rest at the same rate, e.g. "4m10s"; "" when nothing is done yet (no
    rate), when all are done, or when the start is not known."""
    if since is None or done <= 0 or done >= total or now <= since:
        return ""
    return format_duration((total - done) * (now - since) / done)
