"""Pods that never start: an image that does not pull, a ConfigMap that is missing, no node
with a GPU. The Job controller only sees them as active, so the step would sit at "Running
0/N" forever. Pure: from pod views and the time, what to show and when to give up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prs_operator.observation import PodView

SHOWN = 3  # pods named in a message; the count says how many more


@dataclass(frozen=True)
class Waiting:
    pod: str
    why: str  # e.g. "ImagePullBackOff: Back-off pulling image ..."
    seconds: float  # since the pod was created


def not_started(pods: Sequence[PodView], now: float) -> list[Waiting]:
    """The pods that are still Pending with no container started, oldest first."""
    waiting = [Waiting(p.name, p.waiting or "Pending", max(now - p.created, 0.0) if p.created
                       else 0.0)
               for p in pods if p.phase == "Pending" and not p.started]
    return sorted(waiting, key=lambda w: (-w.seconds, w.pod))


def waiting_text(waiting: Sequence[Waiting]) -> str:
    shown = "; ".join(f"pod {w.pod} not started after {w.seconds:.0f} s: {w.why}"
                      for w in waiting[:SHOWN])
    more = f" (and {len(waiting) - SHOWN} more)" if len(waiting) > SHOWN else ""
    return shown + more


def startup_failure(waiting: Sequence[Waiting], timeout: int) -> str | None:
    """The failure message once a pod has waited longer than TIMEOUT seconds, else None."""
    late = [w for w in waiting if w.seconds > timeout]
    if not late:
        return None
    return (f"{waiting_text(late)}; no pod may take longer than startupTimeout={timeout} s "
            "to start: fix the cause (image, ConfigMap, node selector, resources) and "
            "create the step again")


def recheck_in(waiting: Sequence[Waiting], timeout: int) -> float | None:
    """Seconds until a pass must look again although no event may come (the scheduler
    leaves an Unschedulable pod alone): just after the oldest waiting pod passes TIMEOUT."""
    if not waiting:
        return None
    return max(timeout - max(w.seconds for w in waiting), 0.0) + 1.0
