"""What the operator sees of its children, reduced to small immutable views. Pure.

The kopf indexes keep these views instead of whole objects, so memory stays flat however
many pods a step has."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prs_operator.actions import Rejection
from prs_operator.conditions import parse_time

LABEL_STEP = "parallelrun.io/step"
LABEL_ROLE = "parallelrun.io/role"
ANNOTATION_SUSPENDED_BY_STEP = "parallelrun.io/suspended-by-step"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"


@dataclass(frozen=True)
class JobView:
    name: str
    role: str
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    complete: bool = False
    failed_reason: str | None = None
    failed_message: str = ""
    suspended: bool = False
    suspended_by_step: bool = False
    queue: str = ""  # Kueue's LocalQueue: only Kueue suspends and resumes such a Job
    uid: str = ""
    owner_uid: str = ""  # the controller's: a Job belongs to the step whose UID this is

    @property
    def finished(self) -> bool:
        return self.complete or self.failed_reason is not None


@dataclass(frozen=True)
class PodView:
    name: str
    role: str
    index: int | None
    phase: str
    exit_code: int | None
    message: Mapping[str, Any] | None  # the runner's JSON termination message
    raw_message: str = ""
    owner_uid: str = ""  # the controller's: the UID of the Job that made the pod
    reason: str = ""  # the kubelet's word for how the container ended, e.g. OOMKilled
    waiting: str = ""  # why it has not started: ImagePullBackOff: ..., Unschedulable: ...
    created: float = 0.0  # creationTimestamp, seconds since the epoch (0: unknown)
    started: bool = False  # a container ran (is running or has ended)


def view_job(body: Mapping[str, Any]) -> JobView:
    metadata, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
    conditions = {c["type"]: c for c in status.get("conditions") or [] if c["status"] == "True"}
    failed = conditions.get("Failed")
    annotations = metadata.get("annotations") or {}
    return JobView(
        name=metadata["name"],
        role=(metadata.get("labels") or {}).get(LABEL_ROLE, ""),
        active=status.get("active") or 0,
        succeeded=status.get("succeeded") or 0,
        failed=status.get("failed") or 0,
        complete="Complete" in conditions,
        failed_reason=failed.get("reason") or "Failed" if failed else None,
        failed_message=failed.get("message", "") if failed else "",
        suspended=bool(spec.get("suspend")),
        suspended_by_step=annotations.get(ANNOTATION_SUSPENDED_BY_STEP) == "true",
        queue=(metadata.get("labels") or {}).get(LABEL_KUEUE_QUEUE, ""),
        uid=metadata.get("uid") or "",
        owner_uid=controller_uid(metadata),
    )


def controller_uid(metadata: Mapping[str, Any]) -> str:
    """The UID of the object's controller (as metav1.GetControllerOf finds it), or ""."""
    for owner in metadata.get("ownerReferences") or []:
        if owner.get("controller"):
            return str(owner.get("uid") or "")
    return ""


@dataclass(frozen=True)
class Children:
    """A step's own Jobs (by role) and their pods, and the Jobs that only share its name
    (left by a deleted step of the same name): those are never counted, only deleted."""

    jobs: Mapping[str, JobView]
    pods: Sequence[PodView]
    stale: Sequence[JobView]


def own_children(step_uid: str, jobs: Sequence[JobView], pods: Sequence[PodView]) -> Children:
    owned = [job for job in jobs if job.owner_uid == step_uid]
    job_uids = {job.uid for job in owned}
    return Children(
        jobs={job.role: job for job in owned},
        pods=[pod for pod in pods if pod.owner_uid in job_uids],
        stale=[job for job in jobs if job.owner_uid != step_uid],
    )


def view_pod(body: Mapping[str, Any]) -> PodView:
    metadata, status = body["metadata"], body.get("status") or {}
    annotations = metadata.get("annotations") or {}
    index = annotations.get(COMPLETION_INDEX)
    exit_code, text, reason, waiting, started = None, "", "", "", False
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        terminated = state.get("terminated")
        started = started or bool(terminated or state.get("running"))
        if terminated:
            exit_code, text = terminated.get("exitCode"), terminated.get("message") or ""
            reason = terminated.get("reason") or ""
        elif state.get("waiting"):
            waiting = describe_waiting(state["waiting"])
    message = parse_message(text)
    return PodView(
        name=metadata["name"],
        role=(metadata.get("labels") or {}).get(LABEL_ROLE, ""),
        index=int(index) if index is not None and str(index).isdigit() else None,
        phase=status.get("phase", "Pending"),
        exit_code=exit_code,
        message=message,
        raw_message="" if message is not None else text[-2000:],  # kept only when unparsed
        owner_uid=controller_uid(metadata),
        reason=reason,
        waiting=waiting or unschedulable(status),
        created=parse_time(metadata.get("creationTimestamp")) or 0.0,
        started=started,
    )


def describe_waiting(waiting: Mapping[str, Any]) -> str:
    reason, message = waiting.get("reason") or "Waiting", waiting.get("message") or ""
    return f"{reason}: {message}"[:300] if message else str(reason)


def unschedulable(status: Mapping[str, Any]) -> str:
    """The scheduler's reason when it could not place the pod (PodScheduled is False)."""
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            reason = condition.get("reason") or "Unschedulable"
            message = condition.get("message") or ""
            return f"{reason}: {message}"[:300] if message else str(reason)
    return ""


def parse_message(text: str) -> Mapping[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class ReuseSource:
    name: str
    output_uri: str


@dataclass(frozen=True)
class Observed:
    step: Mapping[str, Any]  # metadata, spec with defaults, status
    jobs: Mapping[str, JobView]  # by role: the step's own (own_children)
    pods: Sequence[PodView]
    live: Mapping[int, Mapping[str, Any]]  # shard index → newest progress report
    succeeded: Mapping[str, Sequence[ReuseSource]]  # fingerprint → Succeeded steps (namespace)
    now: float
    stale: Sequence[JobView] = ()  # Jobs of a deleted step of the same name
    rejection: Rejection | None = None  # the last Job the API server refused to create
