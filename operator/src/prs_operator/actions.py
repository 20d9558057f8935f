"""What one reconcile pass asks the I/O layer to do. Plain data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CreateJob:
    manifest: dict[str, Any]


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
