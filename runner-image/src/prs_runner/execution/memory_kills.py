"""Workers the kernel killed for memory. In a container with a memory limit, the kernel's
OOM killer picks the largest process, which is a worker running the user's run() far more
often than the shard itself: the shard then sees a worker killed by SIGKILL, and its
container may still end with exit code 0. The memory cgroup counts those kills; a SIGKILL
while the count went up is reported as OOMKilled, with the limit, instead of a bare signal.

/sys/fs/cgroup inside a container is the container's own cgroup (cgroup v2: memory.events
and memory.max; v1: memory/memory.oom_control and memory/memory.limit_in_bytes). Outside a
container (`prs run`) it is the machine's, where a kill is still one for memory."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as the largest page-aligned number


@dataclass(frozen=True)
class MemoryCgroup:
    oom_kills: int | None  # processes the OOM killer ended in this cgroup; None: unknown
    limit: int | None  # bytes; None: no limit, or unknown


def counter(text: str, key: str) -> int | None:
    """The value of KEY in a flat keyed file ("oom_kill 3" lines)."""
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return None


def limit_bytes(text: str) -> int | None:
    value = text.strip()
    if not value.isdigit() or int(value) >= UNLIMITED:
        return None  # "max" (v2), the v1 unlimited value, or unreadable
    return int(value)


def read_memory_cgroup(root: Path = CGROUP) -> MemoryCgroup:
    """The cgroup's OOM kill count and memory limit, v2 or v1; None for what is not there."""
    for events, limit in ((root / "memory.events", root / "memory.max"),
                          (root / "memory" / "memory.oom_control",
                           root / "memory" / "memory.limit_in_bytes")):
        with contextlib.suppress(OSError):
            kills = counter(events.read_text(), "oom_kill")
            with contextlib.suppress(OSError):
                return MemoryCgroup(kills, limit_bytes(limit.read_text()))
            return MemoryCgroup(kills, None)
    return MemoryCgroup(None, None)


def quantity(size: int) -> str:
    """Bytes the way a Kubernetes memory limit is written (64Mi), when they are whole."""
    for unit, suffix in ((1 << 40, "Ti"), (1 << 30, "Gi"), (1 << 20, "Mi"), (1 << 10, "Ki")):
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return f"{size} bytes"


def worker_death(status: str, killed: bool, kills_before: int | None,
                 now: MemoryCgroup) -> dict[str, str]:
    """The error of a worker that ended: STATUS says how (reap's words), KILLED whether by
    SIGKILL; an OOM kill when the cgroup's count went up since KILLS_BEFORE."""
    text = f"worker process {status}"
    if killed and kills_before is not None and now.oom_kills is not None and (
            now.oom_kills > kills_before):
        within = f" of {quantity(now.limit)}" if now.limit else ""
        return {"type": "OOMKilled", "message": f"{text}: the kernel's OOM killer ended it, "
                f"the container went over its memory limit{within}"}
    return {"type": "WorkerDied", "message": text}
