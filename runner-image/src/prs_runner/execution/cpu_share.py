"""How many CPUs a shard may use: the default number of worker processes, as Azure runs one
per core. `cpus_from` is pure; `usable_cpus` reads what it needs from this machine.

In a pod, the operator passes the container's CPU request (the downward API, rounded up to
whole CPUs) as PRS_CPU_REQUEST: a pod that requests 4 CPUs on a 64-core node gets 4
workers, not 64. A CPU limit shows in the cgroup's quota; the affinity mask bounds both
(taskset, cpusets)."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path

CPU_REQUEST_ENV = "PRS_CPU_REQUEST"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def quota_cpus(quota: str | None, period: str | None) -> int | None:
    """Whole CPUs a CFS quota allows (rounded up); None without a quota."""
    try:
        q, p = int(quota or ""), int(period or "")
    except ValueError:
        return None
    return math.ceil(q / p) if q > 0 and p > 0 else None


def cpus_from(affinity: int, cpu_max: str | None, v1_quota: str | None, v1_period: str | None,
              request: str | None) -> tuple[int, str]:
    """(CPUs, what bounded them): the smallest of the CPU request, the cgroup's quota (v2
    `cpu.max` "QUOTA PERIOD", or v1's two files) and the affinity mask; at least 1."""
    bounds = [(affinity, "the CPUs this process may run on")]
    v2 = cpu_max.split() if cpu_max else []
    quota = quota_cpus(*v2) if len(v2) == 2 else quota_cpus(v1_quota, v1_period)
    if quota is not None:
        bounds.append((quota, "the container's CPU limit"))
    if request and request.isdigit() and int(request) > 0:
        bounds.append((int(request), "the container's CPU request"))
    cpus, source = min(bounds, key=lambda bound: bound[0])
    return max(cpus, 1), source


def read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def usable_cpus(env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """(CPUs, what bounded them) for this process."""
    env = os.environ if env is None else env
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    return cpus_from(affinity, read_text(CGROUP_ROOT / "cpu.max"),
                     read_text(CGROUP_ROOT / "cpu" / "cpu.cfs_quota_us"),
                     read_text(CGROUP_ROOT / "cpu" / "cpu.cfs_period_us"),
                     env.get(CPU_REQUEST_ENV))


def local_process_count(node_count: int, env: Mapping[str, str] | None = None
                        ) -> tuple[int, str]:
    """`prs run`'s default processCountPerNode: its shards share this machine, so each gets
    an equal part of its CPUs (at least one process)."""
    cpus, source = usable_cpus(env)
    return max(cpus // node_count, 1), f"{source}: {cpus}, over {node_count} shard(s)"


def pod_process_count() -> int:
    """processCountPerNode unset in a pod (`prs run` sets it): one worker per usable CPU,
    said in the pod's log."""
    cpus, source = usable_cpus()
    print(f"prs-runner shard: processCountPerNode not set: {cpus} worker process(es), one per "
          f"CPU ({source})", file=sys.stderr, flush=True)
    return cpus
