"""What one reconcile pass asks the I/O layer to do. Plain data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CreateJob:
    manifest: dict[str, Any]
    secret: dict[str, Any] | None = None  # made (or brought up to date) before the Job


@dataclass(frozen=True)
class SetJobSuspended:
    name: str
    suspend: bool


@dataclass(frozen=True)
class DeleteJob:
    name: str
    uid: str | None = None  # only this Job: a newer one of the same name is left alone


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


Action = CreateJob | SetJobSuspended | DeleteJob


@dataclass(frozen=True)
class Rejection:
    """The API server refused to create a child Job (what the Job controller would call
    FailedCreate): an invalid manifest (400/422) never heals; a quota, a policy webhook or a
    terminating namespace (403, 5xx) may."""

    job: str
    code: int
    reason: str
    message: str
    attempts: int = 1

    @property
    def final(self) -> bool:
        return self.code in (400, 422)
