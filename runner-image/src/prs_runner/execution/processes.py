"""Starting and stopping worker processes so that none outlives its parent."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prs_runner.execution.worker_slot import Slot

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
    from prs_runner.storage.local_files import open_append_log  # not needed by `prs` itself

    command_read, command_write = os.pipe()
    event_read, event_write = os.pipe()
    log = open_append_log(log_path)
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "prs_runner.execution.worker", plan_uri, str(shard),
             str(process), code_root, str(command_read), str(event_write)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            pass_fds=(command_read, event_write), start_new_session=True,
            preexec_fn=die_with_parent,
        )
    finally:
        os.close(log)
    os.close(command_read)
    os.close(event_write)
    return child.pid, command_write, event_read


def fork_worker(
    run: Callable[[int, int], int], env: dict[str, str], log_path: str
) -> tuple[int, int, int]:
    """A worker forked from this (already warmed-up) process, in its own process group:
    it inherits the imports (pandas, pyarrow) instead of paying them again. The child keeps
    only its two pipe ends and its log, runs run(command_fd, event_fd), and exits with its
    result without running this process's exit handlers. Returns (pid, command fd, event fd)."""
    from prs_runner.storage.local_files import open_append_log

    command_read, command_write = os.pipe()
    event_read, event_write = os.pipe()
    log = open_append_log(log_path)
    pid = os.fork()
    if pid == 0:
        # The shard's objects (with the data stack, some 75,000) are never collected here.
        # Under Python's thresholds the worker's first collections walked the ones still
        # young in the shard (some 14,000) and every full one walks them all, touching
        # their pages (copy-on-write): about 35 ms per worker (measured on its own).
        gc.freeze()
        code = 1
        try:
            become_worker(log, (command_read, event_write), env)
            code = run(command_read, event_write)
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    for fd in (command_read, event_write, log):
        os.close(fd)
    return pid, command_write, event_read


def become_worker(log: int, keep: tuple[int, int], env: dict[str, str]) -> None:
    """In a forked child: own session, dies with its parent, output to the log, no other
    descriptor of the parent's (another worker's pipe end would hide that worker's EOF)."""
    os.setsid()
    die_with_parent()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDONLY)  # noqa: TID251 (not user data)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    for name in os.listdir("/proc/self/fd"):  # noqa: TID251 (our descriptors)
        fd = int(name)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)
    os.environ.clear()
    os.environ.update(env)


def can_fork() -> bool:
    return hasattr(os, "fork") and os.path.isdir("/proc/self/fd")


def spawn_shard(args: list[str], env: dict[str, str] | None = None,
                stdin: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "prs_runner.commands.runner_cli", *args],
        stdout=subprocess.PIPE, stdin=stdin, env=env, preexec_fn=die_with_parent,
    )


def spawn_standby_shard(argv: list[str]) -> subprocess.Popen[bytes] | None:
    """For `prs run STEP`, its first shard process, started before `prs` loads the rest of
    itself (execution.local_shards gives it its setup, then its go); None for the rest."""
    if len(argv) < 2 or argv[0] != "run" or not os.path.isfile(argv[1]):
        return None
    return spawn_shard(["shard", "--await-setup", "--for", os.path.abspath(argv[1])],
                       stdin=subprocess.PIPE)


def kill_group(pid: int) -> None:
    """SIGKILL a worker and whatever its script started; the worker alone if its group is gone."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def exit_now(code: int) -> None:
    """End a runner command without the interpreter's teardown: with pandas and pyarrow
    loaded it takes tens of milliseconds, and these processes have nothing left to clean up
    (no user code runs in them; every file they wrote is closed)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


PYTHON_GC = gc.get_threshold()  # what user code expects in a worker
RUNNER_GC_GENERATION_0 = 50_000


def runner_gc() -> None:
    """The runner's own processes hold tens of thousands of small objects (the plan, a
    listing, the commits read back), none of them in cycles; Python's default collects
    every 700 allocations and walks all of them each time, which doubled the time to read
    20,000 commits. Workers get Python's defaults back before the script is imported."""
    gc.set_threshold(RUNNER_GC_GENERATION_0, *PYTHON_GC[1:])


def python_gc() -> None:
    gc.set_threshold(*PYTHON_GC)


def exited_by(pid: int, deadline: float) -> bool:
    """Whether the child PID has exited by DEADLINE. It is left a zombie (not reaped), so
    its pid, and so its process group's id, cannot be reused before kill_group."""
    try:
        handle = os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux >= 5.3: look every few milliseconds
        return polled_exit(pid, deadline)
    try:  # readable once the child has exited: a worker's stop costs no polling interval
        return bool(select.select([handle], [], [], max(deadline - time.monotonic(), 0))[0])
    finally:
        os.close(handle)


def polled_exit(pid: int, deadline: float) -> bool:
    pause = 0.001
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


def reap(pid: int) -> str:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return "exited"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return f"was killed by signal {number} ({signal.Signals(number).name})"
    return f"exited with code {os.WEXITSTATUS(status)}"


def stop_idle(slots: list[Slot], timeout: float, shard: str) -> None:
    """Ask each live worker to stop: its shutdown() gets TIMEOUT seconds, then the worker is
    killed, and whatever the script started in the worker's group goes with it. One still
    in init() (started to replace another, late) ran nothing: it is killed at once, rather
    than waited for to call shutdown() after an init() nothing needs any more."""
    for slot in slots:
        if not slot.dead and slot.pid and slot.events >= 0 and slot.ready:
            with contextlib.suppress(BrokenPipeError):
                os.write(slot.commands, b'{"stop": true}\n')
    deadline = time.monotonic() + timeout
    for slot in slots:
        if slot.events >= 0 and slot.pid and not slot.dead:
            if slot.ready and not exited_by(slot.pid, deadline):
                print(f"{shard} process {slot.index}: shutdown() did not return within "
                      f"{timeout} s; killed", file=sys.stderr)
            kill_group(slot.pid)
            reap(slot.pid)
