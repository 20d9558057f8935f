"""A real Kubernetes control plane on this machine, for the cluster test tier.

etcd, kube-apiserver and kube-controller-manager are built from Kubernetes' published Go
modules by ``tools/build-control-plane.sh`` (cached outside the repository), then started
here as local processes on free loopback ports, with:

- a throw-away certificate authority (openssl CLI) that signs the API server's serving
  certificate and the client certificates: ``admin`` (group ``system:masters``) and
  ``system:kube-controller-manager``;
- RBAC authorization, service-account token signing keys and issuer;
- the controllers the project relies on (Job, garbage collector, namespace, service accounts,
  TTL-after-finished, ...), each with its own service-account credentials;
- the node agent (``node_agent``, test infrastructure standing in for a kubelet and a
  scheduler) registering one Node and running pods as local processes.

``ControlPlane.start`` returns once ``/readyz`` answers and the Node is Ready;
``ControlPlane.stop`` kills every process group it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from kubernetes import client, config

from tests import build_scripts

from .pod_sandbox import call

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "tools" / "build-control-plane.sh"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
CONTROLLERS = (
    "job-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "ttl-after-finished-controller",
    "pod-garbage-collector-controller",
    "cronjob-controller",
    "deployment-controller",
    "replicaset-controller",
    # Fills the built-in view/edit/admin ClusterRoles from the aggregated ones (the chart's
    # ParallelRunStep rules for namespace users), as every real cluster's controller-manager.
    "clusterrole-aggregation-controller",
)
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
NODE_NAME = "prs-node-0"


class ControlPlaneError(RuntimeError):
    """The control plane could not be built or started."""


T = TypeVar("T")


def build_binaries(timeout: float = 3600.0) -> Path:
    """Build (or find in the cache) the control-plane binaries; return their directory."""
    return run_build_script(BUILD_SCRIPT, BINARIES, timeout)


def run_build_script(script: Path, binaries: Sequence[str], timeout: float) -> Path:
    """Run a tools/build-*.sh (a no-op when its cache is filled): the folder it prints last,
    once it holds every one of BINARIES."""
    bin_dir = build_scripts.run_build_script(script, timeout, ControlPlaneError)
    missing = [name for name in binaries if not (bin_dir / name).is_file()]
    if missing:
        raise ControlPlaneError(f"{script} did not produce {missing} in {bin_dir}")
    return bin_dir


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return cast(int, sock.getsockname()[1])


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ControlPlaneError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


@dataclass(frozen=True)
class Credentials:
    """Key material of one control plane, all files under ``pki``."""

    pki: Path

    @property
    def ca_cert(self) -> Path:
        return self.pki / "ca.crt"

    def cert(self, name: str) -> Path:
        return self.pki / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.pki / f"{name}.key"

    @classmethod
    def generate(cls, pki: Path) -> Credentials:
        pki.mkdir(parents=True, exist_ok=True)
        creds = cls(pki)
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3",
            "-subj", "/CN=prs-test-ca", "-keyout", str(creds.key("ca")), "-out", str(creds.ca_cert),
        )  # fmt: skip
        creds._sign(
            "apiserver",
            "/CN=kube-apiserver",
            "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
            "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
            "DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth",
        )
        creds._sign("admin", "/O=system:masters/CN=prs-admin", "extendedKeyUsage=clientAuth")
        creds._sign(
            "controller-manager",
            "/CN=system:kube-controller-manager",
            "extendedKeyUsage=clientAuth",
        )
        # How the API server authenticates to kubelets (logs, exec) of real nodes.
        creds._sign(
            "apiserver-kubelet-client",
            "/O=system:masters/CN=kube-apiserver-kubelet-client",
            "extendedKeyUsage=clientAuth",
        )
        _openssl("genrsa", "-out", str(creds.key("service-account")), "2048")
        _openssl(
            "rsa", "-in", str(creds.key("service-account")), "-pubout",
            "-out", str(pki / "service-account.pub"),
        )  # fmt: skip
        return creds

    def _sign(self, name: str, subject: str, extensions: str) -> None:
        csr = self.pki / f"{name}.csr"
        ext = self.pki / f"{name}.ext"
        ext.write_text(extensions + "\n")
        _openssl(
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
            "-keyout", str(self.key(name)), "-out", str(csr),
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(self.ca_cert),
            "-CAkey", str(self.key("ca")), "-CAcreateserial", "-days", "3",
            "-extfile", str(ext), "-out", str(self.cert(name)),
        )  # fmt: skip


def write_kubeconfig(path: Path, server: str, creds: Credentials, user: str) -> Path:
    """A kubeconfig (JSON is valid YAML) for ``user``'s client certificate."""
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "prs-test",
                "cluster": {"server": server, "certificate-authority": str(creds.ca_cert)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(creds.cert(user)),
                    "client-key": str(creds.key(user)),
                },
            }
        ],
        "contexts": [{"name": "prs-test", "context": {"cluster": "prs-test", "user": user}}],
        "current-context": "prs-test",
    }
    path.write_text(json.dumps(kubeconfig, indent=2) + "\n")
    return path


@dataclass
class ControlPlane:
    """A running control plane; create it with ``ControlPlane.start``."""

    bin_dir: Path
    workdir: Path
    server: str
    kubeconfig: Path
    node_name: str
    agent_root: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def pvc_root(self) -> Path:
        """The node agent keeps claim CLAIM of namespace NS at ``pvc_root / NS / CLAIM``."""
        return self.agent_root / "pvc"

    def pvc_path(self, namespace: str, claim: str) -> Path:
        return self.pvc_root / namespace / claim

    def api_client(self) -> client.ApiClient:
        """A new admin ``kubernetes.client.ApiClient`` for this control plane."""
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig), client_configuration=configuration
        )
        return client.ApiClient(configuration)

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this control plane."""
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def log_path(self, component: str) -> Path:
        return self.workdir / "logs" / f"{component}.log"

    @classmethod
    def start(
        cls,
        workdir: Path,
        bin_dir: Path,
        startup_timeout: float = 90.0,
        *,
        node_agent: bool = True,
        extra_controllers: Sequence[str] = (),
    ) -> ControlPlane:
        """Start etcd, kube-apiserver, kube-controller-manager and (unless ``node_agent`` is
        false, for real nodes) the node agent; ``extra_controllers`` are enabled too."""
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "logs").mkdir(exist_ok=True)
        creds = Credentials.generate(workdir / "pki")
        api_port = free_port()
        server = f"https://127.0.0.1:{api_port}"
        plane = cls(
            bin_dir=bin_dir,
            workdir=workdir,
            server=server,
            kubeconfig=write_kubeconfig(workdir / "kubeconfig", server, creds, "admin"),
            node_name=NODE_NAME,
            agent_root=workdir / "node-agent",
        )
        try:
            plane._launch_all(creds, api_port, startup_timeout, node_agent, extra_controllers)
        except BaseException:
            plane.stop()
            raise
        return plane

    def _launch_all(
        self,
        creds: Credentials,
        api_port: int,
        timeout: float,
        node_agent: bool,
        extra_controllers: Sequence[str],
    ) -> None:
        deadline = time.monotonic() + timeout
        etcd_url = f"http://127.0.0.1:{free_port()}"
        peer_url = f"http://127.0.0.1:{free_port()}"
        self._launch("etcd", [
            str(self.bin_dir / "etcd"), "--name", "prs-test",
            "--data-dir", str(self.workdir / "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"prs-test={peer_url}", "--unsafe-no-fsync",
        ])  # fmt: skip
        pki = creds.pki
        self._launch("kube-apiserver", [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={creds.cert('apiserver')}",
            f"--tls-private-key-file={creds.key('apiserver')}",
            f"--client-ca-file={creds.ca_cert}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki / 'service-account.pub'}",
            f"--service-account-signing-key-file={creds.key('service-account')}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--endpoint-reconciler-type=none",  # 127.0.0.1 is not a valid Endpoints address
            "--allow-privileged=true",
            f"--kubelet-client-certificate={creds.cert('apiserver-kubelet-client')}",
            f"--kubelet-client-key={creds.key('apiserver-kubelet-client')}",
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false",
        ])  # fmt: skip
        self._wait_ready(creds, deadline)
        kcm_kubeconfig = write_kubeconfig(
            self.workdir / "controller-manager.kubeconfig", self.server, creds, "controller-manager"
        )
        self._launch("kube-controller-manager", [
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={kcm_kubeconfig}",
            f"--authentication-kubeconfig={kcm_kubeconfig}",
            f"--authorization-kubeconfig={kcm_kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
            f"--cert-dir={self.workdir / 'controller-manager-certs'}",
            f"--controllers={','.join((*CONTROLLERS, *extra_controllers))}",
            f"--service-account-private-key-file={creds.key('service-account')}",
            f"--root-ca-file={creds.ca_cert}",
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            "--concurrent-job-syncs=5",
        ])  # fmt: skip
        if not node_agent:
            return
        self._launch("node-agent", [
            sys.executable, "-m", "cluster.node_agent",
            "--kubeconfig", str(self.kubeconfig), "--node-name", self.node_name,
            "--root", str(self.agent_root), "--api-port", str(api_port),
        ], env={"PYTHONPATH": str(Path(__file__).resolve().parents[1])})  # fmt: skip
        self._wait_node_ready(deadline)

    def _launch(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        # Dies with the test process even when that is SIGKILLed; the node agent gets SIGTERM
        # so that it stops its pods' processes first.
        death_signal = "TERM" if name == "node-agent" else "KILL"
        argv = ["setpriv", "--pdeathsig", death_signal, *argv]
        log = self.log_path(name).open("ab")
        try:
            self.processes[name] = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # its own process group, killed as a whole by stop()
            )
        finally:
            log.close()

    def _check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with code {proc.returncode}; last log lines:\n"
                    + self.log_tail(name)
                )

    def log_tail(self, name: str, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def _wait_ready(self, creds: Credentials, deadline: float) -> None:
        context = ssl.create_default_context(cafile=str(creds.ca_cert))
        context.load_cert_chain(str(creds.cert("admin")), str(creds.key("admin")))
        last_error = ""
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(
                    f"{self.server}/readyz", context=context, timeout=5
                ) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError) as exc:
                last_error = str(exc)
            time.sleep(0.5)
        raise ControlPlaneError(
            f"kube-apiserver not ready: {last_error}\n{self.log_tail('kube-apiserver')}"
        )

    def _wait_node_ready(self, deadline: float) -> None:
        with self.api_client() as api:
            core = client.CoreV1Api(api)
            while time.monotonic() < deadline:
                self._check_alive()
                with contextlib.suppress(client.ApiException):
                    node = call(core.read_node, self.node_name)
                    conditions = node.get("status", {}).get("conditions") or []
                    if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                        return
                time.sleep(0.5)
        raise ControlPlaneError(f"node {self.node_name} not Ready:\n{self.log_tail('node-agent')}")

    def wait_for_service_account(
        self, namespace: str, name: str = "default", timeout: float = 30
    ) -> None:
        """Pods can only be created once the namespace's service account exists."""
        with self.api_client() as api:
            core = client.CoreV1Api(api)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    core.read_namespaced_service_account(name, namespace)
                    return
                except client.ApiException as exc:
                    if exc.status != 404:
                        raise
                time.sleep(0.2)
        raise ControlPlaneError(f"service account {namespace}/{name} was not created")

    def stop(self) -> None:
        """Stop every component, newest first: SIGTERM its process group, then SIGKILL."""
        for name, proc in reversed(list(self.processes.items())):
            _kill_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill_group(proc, signal.SIGKILL)
                proc.wait(timeout=15)
            del self.processes[name]


def _kill_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def read_json(response: Any) -> Any:
    """The decoded body of a ``_preload_content=False`` call of the kubernetes client.

    Prefer ``pod_sandbox.call``; reading the body to the end matters (an unread response
    gets its connection closed and the API server aborts the request).
    """
    try:
        return json.loads(response.data)
    finally:
        response.release_conn()


def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
