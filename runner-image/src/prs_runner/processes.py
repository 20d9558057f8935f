"""Starting and stopping worker processes so that none outlives its parent."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child before exec: the kernel sends SIGKILL when the parent dies, so killing
    `prs run` (even with SIGKILL) takes its supervisors and their workers with it."""
    # Elsewhere than Linux there is no prctl: the pipes' EOF still stops an idle worker.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn_worker(
    plan_uri: str, shard: int, process: int, code_root: str, env: dict[str, str], log_path: str
) -> tuple[int, int, int]:
    """A worker in its own process group; returns (pid, command fd, event fd)."""
    command_read, command_write = os.pipe()
    event_read, event_write = os.pipe()
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "prs_runner.worker", plan_uri, str(shard), str(process),
             code_root, str(command_read), str(event_write)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            pass_fds=(command_read, event_write), start_new_session=True,
            preexec_fn=die_with_parent,
        )
    os.close(command_read)
    os.close(event_write)
    return child.pid, command_write, event_read


def spawn_shard(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "prs_runner.shard_cli", *args],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
        preexec_fn=die_with_parent,
    )


def kill_group(pid: int) -> None:
    """SIGKILL a worker and whatever its script started; the worker alone if its group is gone."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
