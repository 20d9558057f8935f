"""Real nodes for the cluster tier: containerd, kubelet and kube-proxy per node, one
kube-scheduler, the CNI bridge and CoreDNS, on this machine (test infrastructure).

Built by ``tools/build-node.sh`` (cached outside the repository). Every node lives in
namespaces the tier creates and removes:

- network: a "hub" namespace holds a bridge; the host (``10.231.K.1``, K picked per session
  among the /24s no route of the host uses) and each node (``10.231.K.1<i>``) have a veth on
  it. Pods of node i get ``10.244.i.0/24`` on a CNI bridge
  inside node i's namespace; kube-proxy's iptables rules live there too. Nothing is routed off
  the machine: node namespaces have routes to the hub subnet, the other nodes' pod subnets
  and the Service range only, and CoreDNS forwards nothing.
- mount: containerd, kubelet and kube-proxy of a node share a private mount namespace where the
  node's folders are bound over ``/run/containerd``, ``/var/lib/kubelet`` and
  ``/var/log/pods``; container mounts vanish with it.
- cgroups (v1, ``cgroupfs`` driver): each kubelet has its own ``cgroupRoot``
  (``/prs-<id>-n<i>``).

The API server stays on 127.0.0.1; a ``socat`` relay on the host's hub address forwards the
nodes' (and, through the ``kubernetes`` Service's EndpointSlice, the pods') connections to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from .controlplane import (
    REPO_ROOT,
    ControlPlane,
    ControlPlaneError,
    Credentials,
    free_port,
    run_build_script,
)
from .pod_sandbox import call

BUILD_SCRIPT = REPO_ROOT / "tools" / "build-node.sh"
BASE_IMAGE_SCRIPT = REPO_ROOT / "tools" / "build-base-image.sh"
OCI_IMAGE_SCRIPT = REPO_ROOT / "tools" / "oci_image.py"
NODE_BINARIES = (
    "kubelet", "kube-scheduler", "kube-proxy", "containerd", "ctr",
    "containerd-shim-runc-v2", "coredns",
)  # fmt: skip
# Controllers a real cluster needs beyond the node agent's set: Services get EndpointSlices,
# the not-ready taint kubelets register their Node with is removed once they are Ready, and
# claims are bound to (local) PersistentVolumes.
REAL_CLUSTER_CONTROLLERS = (
    "endpointslice-controller",
    "node-lifecycle-controller",
    "persistentvolume-binder-controller",
)

HUB_NETWORKS = "10.231"  # the hub is one 10.231.K.0/24, K free on the host, per session
POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_DNS = "10.96.0.10"
PAUSE_IMAGE = "localhost/prs-pause:1"
BASE_IMAGE = "localhost/prs-base:bookworm"
COREDNS_IMAGE = "localhost/prs-coredns:1"
CGROUP_V1 = Path("/sys/fs/cgroup")
# kubelet sets these host sysctls (kernel defaults it wants); they are put back at the end.
KUBELET_SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")




def pod_subnet(index: int) -> str:
    return f"10.244.{index}.0/24"


def _run(*argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise ControlPlaneError(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result


def build_node_binaries(timeout: float = 3600.0) -> Path:
    """Build (or find in the cache) the node binaries and images; return the bin directory."""
    return run_build_script(BUILD_SCRIPT, NODE_BINARIES, timeout)


def image_archives(bin_dir: Path) -> list[Path]:
    """OCI archives every node imports: the sandbox image, CoreDNS, the Debian base image.

    Made once next to the binaries; the base image's root filesystem may need a debootstrap
    (minutes) on a fresh machine, so the conftest calls this before the first test."""
    images = bin_dir.parent / "images"
    coredns = images / "coredns.tar"
    if not coredns.is_file():
        _run(
            "python3", str(OCI_IMAGE_SCRIPT), "--name", COREDNS_IMAGE,
            "--file", f"{bin_dir / 'coredns'}:/coredns", "--entrypoint", "/coredns",
            "-o", str(coredns),
        )  # fmt: skip
    rootfs = Path(_run("bash", str(BASE_IMAGE_SCRIPT), "--rootfs", timeout=1800).stdout.split()[-1])
    base = images / f"base-{int(rootfs.stat().st_mtime)}.tar"
    if not base.is_file():
        _run(
            "python3", str(OCI_IMAGE_SCRIPT), "--name", BASE_IMAGE, "--layer", str(rootfs),
            "--env", "LANG=C.UTF-8", "--cmd", "python3", "-o", str(base),
        )  # fmt: skip
    return [images / "pause.tar", coredns, base]


@dataclass
class Processes:
    """Processes started here, each in its own process group with its own log."""

    log_dir: Path
    started: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def launch(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> int:
        log = (self.log_dir / f"{name}.log").open("ab")
        try:
            proc = subprocess.Popen(
                ["setpriv", "--pdeathsig", "KILL", *argv],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})}, start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()
        self.started[name] = proc
        return proc.pid

    def check_alive(self) -> None:
        for name, proc in self.started.items():
            if proc.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with code {proc.returncode}:\n{self.tail(name)}"
                )

    def tail(self, name: str, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return "(no log)"

    def stop(self, name: str, grace: float = 10) -> None:
        proc = self.started.pop(name, None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@dataclass
class Network:
    """The hub namespace and bridge, the host's veth on it, one namespace per node."""

    tag: str
    nodes: int
    created: list[str] = field(default_factory=list)
    prefix: str = ""  # 10.231.K, chosen by create()

    @property
    def host_ip(self) -> str:
        return f"{self.prefix}.1"

    def node_ip(self, index: int) -> str:
        return f"{self.prefix}.{10 + index}"

    def _free_prefix(self) -> str:
        """A 10.231.K that no route of the host uses (another session's hub, say)."""
        routes = _run("ip", "-4", "route", "show", "table", "all").stdout
        start = int(self.tag, 16)
        for step in range(256):
            prefix = f"{HUB_NETWORKS}.{(start + step) % 256}"
            if f"{prefix}." not in routes:
                return prefix
        raise ControlPlaneError(f"no free /24 in {HUB_NETWORKS}.0.0/16 for the hub")

    @property
    def hub(self) -> str:
        return f"prs-{self.tag}-hub"

    def node_ns(self, index: int) -> str:
        return f"prs-{self.tag}-n{index}"

    @property
    def host_link(self) -> str:
        return f"prs{self.tag}h"

    def create(self) -> None:
        self.prefix = self._free_prefix()
        hub = self.hub
        self._add_ns(hub)
        self._in(hub, "ip", "link", "add", "br0", "type", "bridge")
        self._in(hub, "ip", "link", "set", "br0", "up")
        self._in(hub, "ip", "link", "set", "lo", "up")
        _run("ip", "link", "add", self.host_link, "type", "veth", "peer", "name", "host0",
             "netns", hub)  # fmt: skip
        _run("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.host_link)
        _run("ip", "link", "set", self.host_link, "up")
        self._in(hub, "ip", "link", "set", "host0", "master", "br0", "up")
        for index in range(self.nodes):
            ns = self.node_ns(index)
            self._add_ns(ns)
            self._in(hub, "ip", "link", "add", f"n{index}", "type", "veth", "peer", "name",
                     "eth0", "netns", ns)  # fmt: skip
            self._in(hub, "ip", "link", "set", f"n{index}", "master", "br0", "up")
            self._in(ns, "ip", "link", "set", "lo", "up")
            self._in(ns, "ip", "addr", "add", f"{self.node_ip(index)}/24", "dev", "eth0")
            self._in(ns, "ip", "link", "set", "eth0", "up")
            # Only what a node must reach: Services (DNATed by kube-proxy before they leave),
            # the other nodes' pods. No default route: nothing leaves the machine.
            self._in(ns, "ip", "route", "add", SERVICE_CIDR, "via", self.host_ip)
            for other in range(self.nodes):
                if other != index:
                    self._in(ns, "ip", "route", "add", pod_subnet(other), "via",
                             self.node_ip(other))  # fmt: skip
            self._in(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def _add_ns(self, name: str) -> None:
        _run("ip", "netns", "add", name)
        self.created.append(name)

    @staticmethod
    def _in(ns: str, *argv: str) -> None:
        _run("ip", "netns", "exec", ns, *argv)

    def destroy(self) -> None:
        # The host's veth goes with its peer in the hub namespace.
        for name in reversed(self.created):
            _run("ip", "netns", "del", name, check=False)
        self.created.clear()
        _run("ip", "link", "del", self.host_link, check=False)


def _kubeconfig(path: Path, server: str, creds: Credentials, user: str) -> Path:
    """A kubeconfig for the relay's address, checking the API server's certificate name."""
    cluster = {"server": server, "certificate-authority": str(creds.ca_cert),
               "tls-server-name": "kubernetes"}  # fmt: skip
    document = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "prs", "cluster": cluster}],
        "users": [{"name": user, "user": {"client-certificate": str(creds.cert(user)),
                                          "client-key": str(creds.key(user))}}],
        "contexts": [{"name": "prs", "context": {"cluster": "prs", "user": user}}],
        "current-context": "prs",
    }  # fmt: skip
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


@dataclass
class RealNode:
    index: int
    name: str
    root: Path
    netns: str
    cgroup_root: str
    mount_ns: str = ""  # /proc/<containerd>/ns/mnt's identity, to find its shims at the end

    @property
    def socket(self) -> Path:
        return self.root / "run" / "containerd.sock"


@dataclass
class RealCluster:
    """A control plane (no node agent) with real nodes; create it with ``RealCluster.start``."""

    plane: ControlPlane
    bin_dir: Path
    workdir: Path
    network: Network
    processes: Processes
    nodes: list[RealNode] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(
        cls, plane: ControlPlane, bin_dir: Path, workdir: Path, nodes: int = 2,
        timeout: float = 240.0, archives: Sequence[Path] | None = None,
    ) -> RealCluster:  # fmt: skip
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "logs").mkdir(exist_ok=True)
        tag = secrets.token_hex(2)
        cluster = cls(
            plane=plane, bin_dir=bin_dir, workdir=workdir, network=Network(tag, nodes),
            processes=Processes(workdir / "logs"),
        )  # fmt: skip
        try:
            images = list(archives) if archives is not None else image_archives(bin_dir)
            cluster._start_all(tag, nodes, images, time.monotonic() + timeout)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    # -- start ---------------------------------------------------------------------------

    def _start_all(self, tag: str, count: int, archives: list[Path], deadline: float) -> None:
        if (CGROUP_V1 / "cgroup.controllers").exists():
            raise ControlPlaneError(
                "this machine has cgroup v2; real_node.py makes the kubelets' cgroupRoot in "
                "cgroup v1 hierarchies only (never run on v2: each node would need its "
                "cgroupRoot made with controllers enabled in cgroup.subtree_control)"
            )
        for name in KUBELET_SYSCTLS:
            self.sysctls[name] = (Path("/proc/sys") / name).read_text().strip()
        # Mount points of the nodes' own folders, left in place (empty) at the end: removing a
        # mount point detaches what other sessions' nodes mounted there.
        for mount_point in (Path("/var/lib/kubelet"), Path("/var/log/pods")):
            mount_point.mkdir(parents=True, exist_ok=True)
        creds = Credentials(self.plane.workdir / "pki")
        api_port = int(self.plane.server.rsplit(":", 1)[1])
        self.network.create()
        self.processes.launch("api-relay", [
            "socat", f"TCP-LISTEN:{api_port},bind={self.network.host_ip},fork,reuseaddr",
            f"TCP:127.0.0.1:{api_port}",
        ])  # fmt: skip
        relay = f"https://{self.network.host_ip}:{api_port}"
        self._publish_api_endpoint(api_port)
        creds._sign("kube-scheduler", "/CN=system:kube-scheduler", "extendedKeyUsage=clientAuth")
        creds._sign("kube-proxy", "/CN=system:kube-proxy", "extendedKeyUsage=clientAuth")
        scheduler_kubeconfig = _kubeconfig(
            self.workdir / "scheduler.kubeconfig", self.plane.server, creds, "kube-scheduler"
        )
        self.processes.launch("kube-scheduler", [
            str(self.bin_dir / "kube-scheduler"), f"--kubeconfig={scheduler_kubeconfig}",
            f"--authentication-kubeconfig={scheduler_kubeconfig}",
            f"--authorization-kubeconfig={scheduler_kubeconfig}",
            "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
        ])  # fmt: skip
        for index in range(count):
            node = RealNode(
                index=index, name=f"prs-real-{index}", root=self.workdir / "nodes" / f"n{index}",
                netns=self.network.node_ns(index), cgroup_root=f"/prs-{tag}-n{index}",
            )  # fmt: skip
            self.nodes.append(node)
            self._start_containerd(node, deadline)
        for archive in archives:  # into both nodes before the kubelets load the machine
            self.import_images(archive)
        for node in self.nodes:
            self._start_kubelet(node, creds, relay)
            self._start_kube_proxy(node, creds, relay)
        self._wait_nodes_ready(deadline)
        self._deploy_coredns(deadline)

    def import_images(self, archive: Path) -> None:
        """Import an image archive (OCI layout, or ``docker save`` output) into every node."""
        for node in self.nodes:
            _run(
                str(self.bin_dir / "ctr"), "--address", str(node.socket), "-n", "k8s.io",
                "images", "import", "--local", str(archive), timeout=900,
            )  # fmt: skip

    def _publish_api_endpoint(self, api_port: int) -> None:
        """The ``kubernetes`` Service's endpoint, for pods: the relay on the hub."""
        body: Any = {  # the client takes dicts as request bodies, its stubs say V1EndpointSlice
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {
                "kubernetes.io/service-name": "kubernetes",
                "endpointslice.kubernetes.io/managed-by": "prs-real-nodes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [self.network.host_ip], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}],
        }  # fmt: skip
        with self.plane.api_client() as api:
            client.DiscoveryV1Api(api).create_namespaced_endpoint_slice("default", body)

    def _node_dirs(self, node: RealNode) -> dict[str, Path]:
        dirs = {
            name: node.root / name
            for name in ("run", "var-lib-kubelet", "pod-logs", "containerd", "cni", "ipam", "opt")
        }
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        return dirs

    def _start_containerd(self, node: RealNode, deadline: float) -> None:
        dirs = self._node_dirs(node)
        cni = {
            "cniVersion": "1.0.0", "name": "prs-pods",
            "plugins": [
                {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": True,
                 "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_subnet(node.index)}]],
                          "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(dirs["ipam"])}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }  # fmt: skip
        (dirs["cni"] / "10-prs.conflist").write_text(json.dumps(cni, indent=2) + "\n")
        config = f"""\
version = 4  # containerd 2.4's format (3 is migrated with a warning)
root = "{dirs['containerd'] / 'root'}"
state = "{dirs['containerd'] / 'state'}"
# NRI would listen on the host's /var/run/nri/nri.sock, shared by every node.
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins.'io.containerd.internal.v1.opt']
  path = "{dirs['opt']}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "{PAUSE_IMAGE}"

[plugins.'io.containerd.cri.v1.runtime']
  netns_mounts_under_state_dir = true
  # No CAP_SYS_RESOURCE here: runc cannot set the sandbox's oom_score_adj -998 (below 0), so
  # requests are raised to containerd's own value (as kind does in user namespaces).
  restrict_oom_score_adj = true

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["/usr/lib/cni"]
  conf_dir = "{dirs['cni']}"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = "/usr/sbin/runc"
"""
        conf = node.root / "containerd.toml"
        conf.write_text(config)
        places = ((dirs["run"], "/run/containerd"), (dirs["var-lib-kubelet"], "/var/lib/kubelet"),
                  (dirs["pod-logs"], "/var/log/pods"))
        for _, target in places:
            # A bind needs its mount point: a machine without containerd or a kubelet of its
            # own has none of these folders (they stay empty here, the binds are private).
            Path(target).mkdir(parents=True, exist_ok=True)
        binds = " && ".join(f"mount --bind {source} {target}" for source, target in places)
        pid = self.processes.launch(f"containerd-{node.name}", [
            "nsenter", f"--net=/run/netns/{node.netns}", "--",
            "unshare", "--mount", "--propagation", "private", "--",
            "sh", "-c", f"{binds} && exec {self.bin_dir / 'containerd'} --config {conf}",
        ], env={"PATH": f"{self.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"})  # fmt: skip
        while not node.socket.is_socket():
            self.processes.check_alive()
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"containerd of {node.name} did not start")
            time.sleep(0.2)
        node.mount_ns = os.readlink(f"/proc/{pid}/ns/mnt")
        self._make_cgroup_root(node)

    def _make_cgroup_root(self, node: RealNode) -> None:
        for controller in _cgroup_controllers():
            path = CGROUP_V1 / controller / node.cgroup_root.lstrip("/")
            path.mkdir(exist_ok=True)
            if controller == "cpuset":
                for name in ("cpuset.cpus", "cpuset.mems"):
                    (path / name).write_text((path.parent / name).read_text())

    def _containerd_pid(self, node: RealNode) -> int:
        return self.processes.started[f"containerd-{node.name}"].pid

    def _start_kubelet(self, node: RealNode, creds: Credentials, relay: str) -> None:
        user = f"node-{node.name}"
        creds._sign(user, f"/O=system:nodes/CN=system:node:{node.name}",
                    "extendedKeyUsage=clientAuth")  # fmt: skip
        kubeconfig = _kubeconfig(node.root / "kubelet.kubeconfig", relay, creds, user)
        resolv = node.root / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.1\n")  # pods with dnsPolicy Default: nothing
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "failCgroupV1": False,  # this machine has cgroup v1
            "cgroupDriver": "cgroupfs", "cgroupRoot": node.cgroup_root, "cgroupsPerQOS": True,
            "containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
            "failSwapOn": False,
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(creds.ca_cert)}},
            "authorization": {"mode": "Webhook"},
            "clusterDomain": "cluster.local", "clusterDNS": [CLUSTER_DNS],
            "resolvConf": str(resolv),
            "readOnlyPort": 0, "healthzBindAddress": "127.0.0.1",
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "volumePluginDir": str(node.root / "volume-plugins"),
            "serializeImagePulls": False,
            "rotateCertificates": False,
            "oomScoreAdj": 0,  # no CAP_SYS_RESOURCE here: -999 cannot be set
        }  # fmt: skip
        conf = node.root / "kubelet.yaml"
        conf.write_text(json.dumps(config, indent=2) + "\n")
        self.processes.launch(f"kubelet-{node.name}", [
            "nsenter", "-t", str(self._containerd_pid(node)), "--mount", "--net", "--",
            str(self.bin_dir / "kubelet"), f"--config={conf}", f"--kubeconfig={kubeconfig}",
            f"--hostname-override={node.name}", f"--node-ip={self.network.node_ip(node.index)}",
            f"--node-labels=prs.test/real-node={node.index}", "--v=2",
        ])  # fmt: skip

    def _start_kube_proxy(self, node: RealNode, creds: Credentials, relay: str) -> None:
        kubeconfig = _kubeconfig(node.root / "kube-proxy.kubeconfig", relay, creds, "kube-proxy")
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "mode": "iptables", "clusterCIDR": POD_CIDR, "hostnameOverride": node.name,
            "bindAddress": self.network.node_ip(node.index),
            "healthzBindAddress": "127.0.0.1:10256", "metricsBindAddress": "127.0.0.1:10249",
            # 0: leave the (host-wide) conntrack table size and timeouts alone
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                          "tcpCloseWaitTimeout": "0s"},
            "iptables": {"localhostNodePorts": False},
            "oomScoreAdj": 0,
            "nodePortAddresses": [f"{self.network.node_ip(node.index)}/32"],
        }  # fmt: skip
        conf = node.root / "kube-proxy.yaml"
        conf.write_text(json.dumps(config, indent=2) + "\n")
        self.processes.launch(f"kube-proxy-{node.name}", [
            "nsenter", "-t", str(self._containerd_pid(node)), "--mount", "--net", "--",
            str(self.bin_dir / "kube-proxy"), f"--config={conf}", "--v=2",
        ])  # fmt: skip

    def _wait_nodes_ready(self, deadline: float) -> None:
        names = {node.name for node in self.nodes}
        with self.plane.api_client() as api:
            core = client.CoreV1Api(api)
            while time.monotonic() < deadline:
                self.processes.check_alive()
                ready = set()
                for node in call(core.list_node).get("items", []):
                    conditions = node.get("status", {}).get("conditions") or []
                    if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                        ready.add(node["metadata"]["name"])
                if names <= ready:
                    return
                time.sleep(1)
        logs = "\n".join(self.processes.tail(f"kubelet-{name}") for name in sorted(names))
        raise ControlPlaneError(f"nodes {sorted(names)} not Ready:\n{logs}")

    def _deploy_coredns(self, deadline: float) -> None:
        manifest = REPO_ROOT / "tests" / "cluster" / "coredns.yaml"
        self.plane.kubectl("apply", "-f", str(manifest))
        with self.plane.api_client() as api:
            apps = client.AppsV1Api(api)
            while time.monotonic() < deadline:
                self.processes.check_alive()
                status = call(apps.read_namespaced_deployment_status, "coredns", "kube-system")
                if status.get("status", {}).get("availableReplicas"):
                    return
                time.sleep(1)
        described = self.plane.kubectl("-n", "kube-system", "describe", "pods", check=False)
        raise ControlPlaneError(f"CoreDNS not available:\n{described.stdout[-4000:]}")

    # -- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every process, kill the containers, remove cgroups, namespaces and sysctls."""
        started = time.monotonic()
        stop_log = self.workdir / "logs" / "stop.log"

        def took(what: str) -> None:  # logs/stop.log: where the teardown's time goes
            with contextlib.suppress(OSError), stop_log.open("a") as out:
                out.write(f"{time.monotonic() - started:7.2f}s {what}\n")

        for name in [n for n in self.processes.started if not n.startswith("containerd-")]:
            self.processes.stop(name)
            took(f"stopped {name}")
        for node in self.nodes:
            self._kill_node_leftovers(node)
            took(f"{node.name}: containers and shims killed")
            self.processes.stop(f"containerd-{node.name}")
            self._kill_node_leftovers(node)
            took(f"{node.name}: containerd stopped")
            self._remove_cgroup_root(node)
            took(f"{node.name}: cgroups removed")
        for name in list(self.processes.started):
            self.processes.stop(name)
        self.network.destroy()
        took("network namespaces removed")
        for name, value in self.sysctls.items():
            with contextlib.suppress(OSError):
                (Path("/proc/sys") / name).write_text(value + "\n")
        for node in self.nodes:  # container layers: hundreds of MB a node
            _run("rm", "-rf", str(node.root / "containerd"), check=False)
        took("container layers removed")

    def _kill_node_leftovers(self, node: RealNode) -> None:
        """SIGKILL the node's containers (by cgroup) and shims (by mount namespace)."""
        for _ in range(50):
            pids = set(self._cgroup_pids(node))
            if node.mount_ns:
                pids |= set(_pids_in_mount_ns(node.mount_ns))
            pids.discard(self.processes.started.get(f"containerd-{node.name}", _NoProc).pid)
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)

    def _cgroup_pids(self, node: RealNode) -> Iterator[int]:
        root = CGROUP_V1 / "pids" / node.cgroup_root.lstrip("/")
        if not root.is_dir():
            return
        for procs in root.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                yield from (int(line) for line in procs.read_text().split())

    def _remove_cgroup_root(self, node: RealNode) -> None:
        for controller in _cgroup_controllers():
            root = CGROUP_V1 / controller / node.cgroup_root.lstrip("/")
            if not root.is_dir():
                continue
            folders = sorted((p for p in root.rglob("*") if p.is_dir()),
                             key=lambda p: len(p.parts), reverse=True)  # fmt: skip
            for folder in [*folders, root]:
                for _ in range(20):
                    try:
                        folder.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.1)


class _NoProc:
    pid = -1


def _cgroup_controllers() -> list[str]:
    """The cgroup v1 hierarchies kubelet uses (one folder each under /sys/fs/cgroup)."""
    names = ("cpu", "cpuacct", "cpuset", "memory", "pids", "hugetlb", "blkio", "devices",
             "freezer", "net_cls", "net_prio", "perf_event", "systemd")  # fmt: skip
    return [name for name in names if (CGROUP_V1 / name).is_dir()]


def _pids_in_mount_ns(mount_ns: str) -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "ns" / "mnt") == mount_ns:
                    yield int(entry.name)


def describe(cluster: RealCluster, namespace: str) -> Any:
    """What a failing test prints: pods of the namespace, the nodes' recent kubelet logs."""
    pods = cluster.plane.kubectl("-n", namespace, "get", "pods", "-o", "wide", check=False)
    logs = "\n".join(cluster.processes.tail(f"kubelet-{node.name}", 15) for node in cluster.nodes)
    return f"{pods.stdout}{pods.stderr}\n{logs}"
