"""Operator settings, read once from the environment (the Helm chart sets them)."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_RUNNER_IMAGE = "ghcr.io/parallelrun/prs-runner:0.1.0"


class SettingsError(ValueError):
    """A setting the operator cannot start with: one line naming it."""


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...]  # empty: every namespace
    runner_image: str
    http_port: int
    progress_url: str
    progress_key: bytes
    log_level: str = "INFO"
    progress_key_file: str = ""  # followed for changes (ProgressKey)
    lease_namespace: str = ""  # leader election: empty = this operator is the only one
    lease_name: str = ""
    identity: str = ""  # the pod's name: who holds the lease
    # The Secret holding the key, read or created at start when the key file is missing
    # (progress_key_secret.py); empty: the key file (or a key of this process) only.
    key_secret_namespace: str = ""
    key_secret_name: str = ""

    @staticmethod
    def from_env(env: Mapping[str, str]) -> Settings:
        key_file = env.get("PRS_PROGRESS_KEY_FILE", "")
        key_secret = env.get("PRS_PROGRESS_KEY_SECRET", "")
        key = read_key_file(key_file, required=not key_secret)
        if not key and not key_secret:
            # Without a mounted key, reports work until the operator restarts; the chart mounts one.
            key = secrets.token_bytes(32)
        port = int(env.get("PRS_HTTP_PORT", "8080"))
        return Settings(
            namespaces=tuple(n.strip() for n in env.get("PRS_NAMESPACES", "").split(",")
                             if n.strip()),
            runner_image=env.get("PRS_RUNNER_IMAGE", DEFAULT_RUNNER_IMAGE),
            http_port=port,
            progress_url=env.get("PRS_PROGRESS_URL", f"http://127.0.0.1:{port}/v1/progress"),
            progress_key=key,
            log_level=env.get("PRS_LOG_LEVEL", "INFO"),
            progress_key_file=key_file,
            lease_namespace=env.get("PRS_LEASE_NAMESPACE", ""),
            lease_name=env.get("PRS_LEASE_NAME", ""),
            identity=env.get("PRS_POD_NAME") or socket.gethostname(),
            key_secret_namespace=env.get("PRS_PROGRESS_KEY_SECRET_NAMESPACE", "default"),
            key_secret_name=key_secret,
        )


def read_key_file(path: str, required: bool) -> bytes:
    """The key in PATH, b"" when PATH is empty. A missing file is b"" too when the key can
    come from its Secret instead: the chart mounts that Secret as an optional volume, empty
    until the operator has created it."""
    if not path:
        return b""
    try:
        with open(path, "rb") as stream:
            return stream.read().strip()
    except FileNotFoundError:
        if required:
            raise SettingsError(f"PRS_PROGRESS_KEY_FILE={path}: no such file; mount the "
                                "progress key there or set PRS_PROGRESS_KEY_SECRET") from None
        return b""


def from_process_env() -> Settings:
    return Settings.from_env(os.environ)
