"""TEST INFRASTRUCTURE (cluster tier): one container of a pod run by the node agent.

Its process (started by ``pod_sandbox.start_process`` in its own session and mount
namespace), its restarts, and its status in the shape a kubelet reports
(``containerStatuses[]``: state waiting/running/terminated with exit code, reason and the
termination message).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from .pod_sandbox import Json, Mount, start_process

MESSAGE_LIMIT = 4096  # bytes of a termination message, as the kubelet's limit


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Container:
    """One container of a pod: its process, restarts and kubelet-style status."""

    def __init__(self, spec: Json, pod_dir: Path) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self.log_path = pod_dir / "logs" / f"{self.name}.log"
        self.message_path = pod_dir / "termination" / self.name
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.started_at = ""
        self.state: Json = {"waiting": {"reason": "ContainerCreating"}}

    def start(
        self, argv: list[str], mounts: list[Mount], env: dict[str, str], workdir: str
    ) -> None:
        self.message_path.parent.mkdir(parents=True, exist_ok=True)
        self.message_path.write_text("")
        self.process = start_process(argv, mounts, env, workdir, self.log_path)
        self.started_at = now()
        self.state = {"running": {"startedAt": self.started_at}}

    def poll(self) -> int | None:
        """The exit code once the process has ended (128 + signal when killed)."""
        if self.process is None or self.process.poll() is None:
            return None
        code = self.process.returncode
        return 128 - code if code < 0 else code

    def finish(self, code: int, killed: bool = False) -> None:
        message = self.message_path.read_text(errors="replace")[:MESSAGE_LIMIT]
        fallback = self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError"
        if not message.strip() and fallback and code != 0 and self.log_path.exists():
            tail = self.log_path.read_text(errors="replace").splitlines()[-80:]
            message = "\n".join(tail)[-MESSAGE_LIMIT:]
        reason = "Completed" if code == 0 else ("Killed" if killed else "Error")
        terminated: Json = {
            "exitCode": code,
            "reason": reason,
            "startedAt": self.started_at or now(),
            "finishedAt": now(),
        }
        if message:
            terminated["message"] = message
        self.state = {"terminated": terminated}
        self.kill(signal.SIGKILL)  # like a container's end: no process of it outlives the first
        self.process = None

    def kill(self, sig: signal.Signals) -> None:
        """Signal the container's process group (also its leftovers once the leader ended)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)

    def status(self) -> Json:
        running = "running" in self.state
        return {
            "name": self.name, "image": self.spec.get("image") or "none", "imageID": "",
            "containerID": f"local://{self.process.pid}" if self.process else "",
            "ready": running, "started": running, "restartCount": self.restarts,
            "state": self.state,
        }  # fmt: skip
