"""The operator as the cluster tier runs it: a real `python -m prs_operator` process that
talks to the test control plane as a ServiceAccount holding exactly the Helm chart's rules
(helm/parallelrun-operator/files/operator-rules.yaml), so a missing RBAC verb fails a test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from .controlplane import ControlPlane, free_port, wait_for
from .pod_sandbox import call

REPO = Path(__file__).resolve().parents[2]
RULES_PATH = REPO / "helm" / "parallelrun-operator" / "files" / "operator-rules.yaml"
OPERATOR_NAMESPACE = "prs-system"
SERVICE_ACCOUNT = "parallelrun-operator"


def operator_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = yaml.safe_load(RULES_PATH.read_text())
    return rules


def grant_operator_rules(plane: ControlPlane, workdir: Path) -> Path:
    """ServiceAccount + ClusterRole (the chart's rules) + binding; a kubeconfig with its token."""
    with plane.api_client() as api:
        core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
        creations: list[tuple[Any, tuple[Any, ...]]] = [
            (core.create_namespace, ({"metadata": {"name": OPERATOR_NAMESPACE}},)),
            (core.create_namespaced_service_account,
             (OPERATOR_NAMESPACE, {"metadata": {"name": SERVICE_ACCOUNT}})),
            (rbac.create_cluster_role,
             ({"metadata": {"name": SERVICE_ACCOUNT}, "rules": operator_rules()},)),
            (rbac.create_cluster_role_binding, ({
                "metadata": {"name": SERVICE_ACCOUNT},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": SERVICE_ACCOUNT},
                "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT,
                              "namespace": OPERATOR_NAMESPACE}]},)),
        ]
        for method, args in creations:
            try:
                call(method, *args)
            except client.ApiException as error:
                if error.status != 409:
                    raise
    return kubeconfig_for(plane, OPERATOR_NAMESPACE, SERVICE_ACCOUNT,
                          workdir / "operator.kubeconfig")


def kubeconfig_for(plane: ControlPlane, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as ServiceAccount NAMESPACE/ACCOUNT (a bound token)."""
    with plane.api_client() as api:
        token = call(client.CoreV1Api(api).create_namespaced_service_account_token, account,
                     namespace, {"spec": {"expirationSeconds": 86400}})
    admin = json.loads(plane.kubeconfig.read_text())
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "clusters": admin["clusters"],
        "users": [{"name": account, "user": {"token": token["status"]["token"]}}],
        "contexts": [{"name": "operator", "context": {"cluster": admin["clusters"][0]["name"],
                                                      "user": account}}],
        "current-context": "operator",
    }
    path.write_text(json.dumps(kubeconfig))
    return path


@dataclass
class OperatorProcess:
    kubeconfig: Path
    workdir: Path
    namespaces: str = ""  # PRS_NAMESPACES: empty = cluster-wide
    progress_url: str = ""  # where runner pods report; empty: this operator's endpoint
    lease: tuple[str, str, str] | None = None  # leader election: namespace, name, identity
    # As the chart runs it: no key file yet, the key read from (or created in) this Secret.
    key_secret: tuple[str, str] | None = None  # namespace, name
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"operator-{self.starts}.log"

    def start(self, wait: bool = True) -> None:
        key_file = self.workdir / "progress.key"
        if self.key_secret is None and not key_file.exists():
            key_file.write_bytes(os.urandom(32).hex().encode())
        self.starts += 1
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig),
               "PRS_HTTP_PORT": str(self.port),
               "PRS_PROGRESS_URL": self.progress_url or f"{self.url}/v1/progress",
               "PRS_PROGRESS_KEY_FILE": str(key_file), "PRS_RUNNER_IMAGE": "prs-runner:test",
               "PRS_LOG_LEVEL": "INFO", "PRS_NAMESPACES": self.namespaces}
        if self.lease is not None:
            env.update(zip(("PRS_LEASE_NAMESPACE", "PRS_LEASE_NAME", "PRS_POD_NAME"),
                           self.lease, strict=True))
        if self.key_secret is not None:
            env.update(zip(("PRS_PROGRESS_KEY_SECRET_NAMESPACE", "PRS_PROGRESS_KEY_SECRET"),
                           self.key_secret, strict=True))
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "prs_operator"], env=env,
                                            stdout=log, stderr=subprocess.STDOUT)
        if wait:
            wait_for(self.healthy, 60, "operator /healthz")

    def healthy(self, path: str = "/healthz") -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"the operator exited:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def ready(self) -> bool:
        return self.healthy("/readyz")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def peak_rss_kib(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")
