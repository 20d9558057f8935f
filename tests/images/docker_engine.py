"""The images tier's handle on a real Docker engine (Debian's docker.io): start it, build the
local base image and the project's images, run containers with the pods' restrictions."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKER = "/usr/bin/docker"  # Debian's client, the same version as the engine it talks to
RUNNER_IMAGE = "parallelrunstep/runner:dev"
OPERATOR_IMAGE = "parallelrunstep/operator:dev"
PRS_UID = 10001

# What the pods get: no root, no capabilities, no writes outside mounts and /tmp.
RESTRICTED = (
    "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
    "--user", f"{PRS_UID}:{PRS_UID}", "--tmpfs", "/tmp:size=256m",
)


class DockerError(RuntimeError):
    pass


def pip_ca_bundle() -> Path | None:
    """The CA bundle pip trusts on this machine (PIP_CERT, else the system bundle). Handed to
    image builds as the `pip-ca` secret, so builds work behind a TLS-inspecting proxy too."""
    for candidate in (os.environ.get("PIP_CERT"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def run_script(name: str, timeout: float) -> str:
    """Runs tools/<name>; returns its last stdout line; its stderr is the error's detail."""
    try:
        done = subprocess.run([str(ROOT / "tools" / name)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise DockerError(f"tools/{name} did not finish in {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise DockerError(f"tools/{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class DockerEngine:
    started: str  # how tools/start-docker.sh found or started the engine

    @classmethod
    def start(cls, timeout: float = 600) -> DockerEngine:
        return cls(run_script("start-docker.sh", timeout))

    def docker(self, *args: str, timeout: float = 120,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "DOCKER_BUILDKIT": "1"})
        if check and done.returncode != 0:
            raise DockerError(f"docker {' '.join(args)} failed ({done.returncode}):\n"
                              f"{done.stdout[-2000:]}{done.stderr[-3000:]}")
        return done

    def base_image(self, timeout: float = 1200) -> str:
        """The debootstrapped Debian + python3 image (built once, then cached)."""
        return run_script("build-base-image.sh", timeout)

    def build(self, tag: str, dockerfile: Path, context: Path, build_args: dict[str, str],
              timeout: float = 900) -> float:
        """`docker build` with BuildKit; returns the seconds it took."""
        args = ["build", "--progress", "plain", "-t", tag, "-f", str(dockerfile)]
        for key, value in build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        ca = pip_ca_bundle()
        if ca is not None:
            args += ["--secret", f"id=pip-ca,src={ca}"]
        began = time.monotonic()
        self.docker(*args, str(context), timeout=timeout)
        return time.monotonic() - began

    def image_size(self, tag: str) -> int:
        return int(self.docker("image", "inspect", "--format", "{{.Size}}", tag).stdout)

    def run_restricted(self, image: str, command: list[str], mounts: list[tuple[Path, bool]],
                       timeout: float = 300, network: str = "none",
                       env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """One container with the pods' restrictions, run to its end. Does not raise when the
        container fails."""
        return self.docker("run", "--rm", *restricted_options(mounts, network, env), image,
                           *command, timeout=timeout, check=False)

    def start_restricted(self, image: str, command: list[str], mounts: list[tuple[Path, bool]],
                         network: str = "none", env: dict[str, str] | None = None) -> str:
        """Like run_restricted, in the background (e.g. the operator); returns the container id
        for ``docker("logs", id)`` and ``remove(id)``."""
        return self.docker("run", "--detach", *restricted_options(mounts, network, env),
                           image, *command).stdout.strip()

    def remove(self, container: str) -> None:
        self.docker("rm", "--force", container, check=False)


def restricted_options(mounts: list[tuple[Path, bool]], network: str,
                       env: dict[str, str] | None) -> list[str]:
    """Each mount (path, writable) appears at the same absolute path inside, so the paths in a
    plan stay valid; ``network`` is "none" unless the container must reach something."""
    options = [*RESTRICTED, "--network", network]
    for path, writable in mounts:
        options += ["-v", f"{path}:{path}:{'rw' if writable else 'ro'}"]
    for key, value in (env or {}).items():
        options += ["-e", f"{key}={value}"]
    return options


def build_runner_image(engine: DockerEngine, base_image: str, tag: str = RUNNER_IMAGE) -> str:
    engine.build(tag, ROOT / "runner-image" / "Dockerfile", ROOT, {"BASE_IMAGE": base_image})
    return tag


def build_operator_image(engine: DockerEngine, base_image: str,
                         tag: str = OPERATOR_IMAGE) -> str:
    """Needs operator/src (the prs_operator package) and pyproject.toml finding it."""
    if not (ROOT / "operator" / "src").is_dir():
        raise DockerError("operator/src does not exist: there is no operator to put in an image")
    engine.build(tag, ROOT / "operator" / "Dockerfile", ROOT, {"BASE_IMAGE": base_image})
    return tag
