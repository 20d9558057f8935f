"""TEST INFRASTRUCTURE (cluster tier): a stand-in for a scheduler and a kubelet.

Never part of the product. Started by ``controlplane.ControlPlane`` as
``python -m cluster.node_agent`` (with ``tests/`` on ``PYTHONPATH``), it:

- registers one Node (Ready, capacity cpu/memory/pods of this machine) and keeps its status
  and its Lease in ``kube-node-lease`` fresh;
- binds every unscheduled pod (``spec.schedulerName`` default-scheduler) whose
  ``nodeSelector`` the Node's labels satisfy to that Node, and marks the others
  ``PodScheduled=False``/``Unschedulable`` as kube-scheduler would;
- runs the containers of the pods bound to it as local processes (see ``pod_sandbox``:
  images are ignored, ``command`` + ``args`` run with the project's Python environment first
  on ``PATH``, volumes bind-mounted in a private mount namespace);
- reports pod status like a kubelet (phase, conditions, containerStatuses with exit codes and
  termination messages, startTime), so the real Job controller sees real results;
- honours deletion: SIGTERM to the process group, SIGKILL after the grace period, terminal
  status, then deletes the pod with grace period 0.

Init containers run one after the other before the containers, which run side by side;
``restartPolicy`` OnFailure and Always restart a container in place.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from kubernetes import client, config, watch

from .container_process import Container, now
from .pod_sandbox import (
    DEFAULT_PATH,
    HostMountPoints,
    Json,
    ObjectReader,
    PodSetupError,
    VolumeBuilder,
    call,
    container_env,
    container_mounts,
    expand_vars,
)

log = logging.getLogger("node-agent")
HEARTBEAT_SECONDS = 10
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def condition(kind: str, status: bool, reason: str = "") -> Json:
    found: Json = {
        "type": kind,
        "status": "True" if status else "False",
        "lastTransitionTime": now(),
    }
    if reason:
        found["reason"] = reason
    return found


class PodWorker(threading.Thread):
    """Runs one pod from its binding to its end, reporting status on the way."""

    def __init__(self, agent: NodeAgent, pod: Json) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.agent = agent
        self.pod = pod
        self.name: str = meta["name"]
        self.namespace: str = meta["namespace"]
        self.pod_dir = agent.root / "pods" / self.namespace / f"{self.name}-{meta['uid'][:8]}"
        self.inits = [
            Container(spec, self.pod_dir) for spec in pod["spec"].get("initContainers") or []
        ]
        self.containers = [Container(spec, self.pod_dir) for spec in pod["spec"]["containers"]]
        self.stop_requested = threading.Event()
        self.grace_seconds = 30.0
        self.held: list[Path] = []
        self.started_at = now()
        self.finished = False

    def request_stop(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self.stop_requested.set()

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("pod %s/%s: agent failure", self.namespace, self.name)
            for container in self.inits + self.containers:
                container.kill(signal.SIGKILL)
            self._report("Failed", "AgentError")
        finally:
            self.agent.mount_points.release(self.held)
            self.held = []
        if self.stop_requested.is_set():
            self.agent.delete_now(self.pod)

    def _run(self) -> None:
        self._report("Pending")
        try:
            volumes = VolumeBuilder(
                self.agent.core, self.pod, self.pod_dir, self.agent.pvc_root
            ).build_all()
        except PodSetupError as exc:
            for container in self.inits + self.containers:
                container.state = {"waiting": {"reason": exc.reason, "message": exc.message}}
            self._report("Failed", exc.reason, exc.message)
            return
        for init in self.inits:
            if not self._run_to_end([init], volumes, restart_on_success=False):
                self._report("Failed")
                return
        always = self.pod["spec"].get("restartPolicy") == "Always"
        succeeded = self._run_to_end(self.containers, volumes, restart_on_success=always)
        self._report("Succeeded" if succeeded else "Failed")

    def _run_to_end(
        self, group: list[Container], volumes: dict[str, Path], restart_on_success: bool
    ) -> bool:
        """Run ``group`` side by side until all ended (or a stop); True if all exited 0."""
        pending = [container for container in group if self._start(container, volumes)]
        self._report("Running")
        on_failure = self.pod["spec"].get("restartPolicy") in ("OnFailure", "Always")
        while pending:
            if self.stop_requested.is_set():
                self._kill(pending)
                return False
            for container in list(pending):
                code = container.poll()
                if code is None:
                    continue
                container.finish(code)
                restart = (code != 0 and on_failure) or (code == 0 and restart_on_success)
                if not (restart and self._start(container, volumes, restarting=True)):
                    pending.remove(container)
                self._report("Running")
            time.sleep(0.2)
        return all(c.state["terminated"]["exitCode"] == 0 for c in group)

    def _start(
        self, container: Container, volumes: dict[str, Path], restarting: bool = False
    ) -> bool:
        """Start ``container``; False (and terminated with exit code 128) if it cannot start."""
        spec = container.spec
        try:
            env = container_env(
                ObjectReader(self.agent.core, self.namespace),
                self.pod,
                spec,
                self.agent.base_env(self.pod),
            )
            argv = [
                expand_vars(arg, env)
                for arg in (spec.get("command") or []) + (spec.get("args") or [])
            ]
            if not spec.get("command"):
                raise PodSetupError(
                    "CreateContainerConfigError", "the node agent needs an explicit command"
                )
            mounts = container_mounts(spec, volumes, container.message_path)
        except PodSetupError as exc:
            container.message_path.parent.mkdir(parents=True, exist_ok=True)
            container.message_path.write_text(exc.message)
            container.finish(128)
            return False
        workdir = spec.get("workingDir") or str(self.pod_dir / "work")
        nested_in = [Path(m.target) for m in mounts if m.source.is_dir()]
        for path, is_dir in [
            *((Path(m.target), m.source.is_dir()) for m in mounts),
            (Path(workdir), True),
        ]:
            if not any(parent in nested_in for parent in path.parents):
                self.held = self.agent.mount_points.acquire(path, is_dir) + self.held
        container.restarts += int(restarting)
        container.start(argv, mounts, env, workdir)
        return True

    def _kill(self, containers: list[Container]) -> None:
        for container in containers:
            container.kill(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        while time.monotonic() < deadline and any(c.poll() is None for c in containers):
            time.sleep(0.1)
        for container in containers:
            container.kill(signal.SIGKILL)
            code = container.poll()
            while code is None:
                time.sleep(0.05)
                code = container.poll()
            container.finish(code, killed=True)

    def _report(self, phase: str, reason: str = "", message: str = "") -> None:
        terminal = phase in ("Succeeded", "Failed")
        running = phase == "Running" and all("running" in c.state for c in self.containers)
        inits_done = all(c.state.get("terminated", {}).get("exitCode") == 0 for c in self.inits)
        status: Json = {
            "phase": phase, "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}], "startTime": self.started_at,
            "conditions": [
                condition("PodScheduled", True), condition("Initialized", inits_done or terminal),
                condition("ContainersReady", running), condition("Ready", running),
            ],
            "containerStatuses": [c.status() for c in self.containers],
        }  # fmt: skip
        if self.inits:
            status["initContainerStatuses"] = [c.status() for c in self.inits]
        if reason:
            status["reason"], status["message"] = reason, message or reason
        self.finished = terminal
        try:
            call(
                self.agent.core.patch_namespaced_pod_status,
                self.name,
                self.namespace,
                {"status": status},
            )
        except client.ApiException as exc:
            if exc.status != 404:
                log.warning(
                    "pod %s/%s: status update failed: %s", self.namespace, self.name, exc.reason
                )


class NodeAgent:
    def __init__(self, api: client.ApiClient, node_name: str, root: Path, api_port: int) -> None:
        self.core = client.CoreV1Api(api)
        self.leases = client.CoordinationV1Api(api)
        self.node_name = node_name
        self.node_labels = {"kubernetes.io/hostname": node_name, "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": ARCH}
        self.root = root
        self.pvc_root = root / "pvc"
        self.api_port = api_port
        self.mount_points = HostMountPoints()
        self.workers: dict[str, PodWorker] = {}
        self.deleting: set[str] = set()
        self.stopping = threading.Event()
        venv = os.environ.get("PRS_NODE_AGENT_VENV")
        self.python_bin = str(Path(venv) / "bin") if venv else str(Path(sys.executable).parent)

    def base_env(self, pod: Json) -> dict[str, str]:
        """What the container image and the kubelet would provide before the pod's own env."""
        return {
            "PATH": f"{self.python_bin}:{DEFAULT_PATH}",
            "VIRTUAL_ENV": str(Path(self.python_bin).parent),
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "HOSTNAME": pod["metadata"]["name"],
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.api_port),
        }

    def register_node(self) -> None:
        cpus, memory = os.cpu_count() or 1, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        capacity = {
            "cpu": str(cpus),
            "memory": f"{memory // 1024}Ki",
            "pods": "110",
            "ephemeral-storage": "100Gi",
        }
        node = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.node_name, "labels": self.node_labels},
        }  # fmt: skip
        with contextlib.suppress(client.ApiException):
            call(self.core.create_node, node)
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        info = {
            "machineID": boot_id, "systemUUID": boot_id, "bootID": boot_id,
            "kernelVersion": platform.release(), "osImage": "prs node agent",
            "containerRuntimeVersion": "local://0", "kubeletVersion": "v0.0.0-prs-node-agent",
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": ARCH,
        }  # fmt: skip
        status = {
            "capacity": capacity, "allocatable": capacity, "nodeInfo": info,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.node_name},
            ],
        }  # fmt: skip
        call(self.core.patch_node_status, self.node_name, {"status": status})
        self.heartbeat()

    def heartbeat(self) -> None:
        ready = condition("Ready", True, "KubeletReady")
        ready.update(
            {"lastHeartbeatTime": now(), "message": "prs node agent is posting ready status"}
        )
        call(self.core.patch_node_status, self.node_name, {"status": {"conditions": [ready]}})
        micro = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease = {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
            "spec": {
                "holderIdentity": self.node_name, "leaseDurationSeconds": 40, "renewTime": micro,
            },
        }  # fmt: skip
        try:
            call(self.leases.patch_namespaced_lease, self.node_name, "kube-node-lease", lease)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            call(self.leases.create_namespaced_lease, "kube-node-lease", lease)

    def heartbeat_forever(self) -> None:
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            try:
                self.heartbeat()
            except Exception as exc:
                log.warning("heartbeat failed: %s", exc)

    def watch_pods(self) -> None:
        """List then watch all pods, for ever; any error or expiry starts over with a list."""
        while not self.stopping.is_set():
            try:
                listing = call(self.core.list_pod_for_all_namespaces)
                for pod in listing["items"]:
                    self.reconcile(pod)
                stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                    self.core.list_pod_for_all_namespaces,
                    resource_version=listing["metadata"]["resourceVersion"],
                    timeout_seconds=60,
                    allow_watch_bookmarks=True,
                )
                for event in stream:
                    if event["type"] == "ERROR":
                        break
                    if event["type"] == "DELETED":
                        self.forget(event["raw_object"])
                    elif event["type"] in ("ADDED", "MODIFIED"):
                        self.reconcile(event["raw_object"])
            except Exception as exc:
                if not self.stopping.is_set():
                    log.warning("pod watch failed, listing again: %s", exc)
                    time.sleep(1)

    def reconcile(self, pod: Json) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        uid: str = meta["uid"]
        if not spec.get("nodeName"):
            if spec.get(
                "schedulerName", "default-scheduler"
            ) == "default-scheduler" and not meta.get("deletionTimestamp"):
                if self.fits(pod):
                    self.bind(pod)
                else:
                    self.unschedulable(pod)
            return
        if spec["nodeName"] != self.node_name:
            return
        worker = self.workers.get(uid)
        if meta.get("deletionTimestamp"):
            grace = float(meta.get("deletionGracePeriodSeconds") or 0)
            if worker is not None and worker.is_alive():
                worker.request_stop(grace)
            elif uid not in self.deleting:
                self.delete_now(pod)
            return
        if worker is None and (pod.get("status") or {}).get("phase", "Pending") == "Pending":
            self.workers[uid] = worker = PodWorker(self, pod)
            worker.start()

    def fits(self, pod: Json) -> bool:
        """The scheduler's node selector check (the only predicate this node agent plays):
        a pod for other nodes (a GPU pool, a benchmark's own node) stays unbound."""
        selector = pod["spec"].get("nodeSelector") or {}
        return all(self.node_labels.get(key) == value for key, value in selector.items())

    def unschedulable(self, pod: Json) -> None:
        """What kube-scheduler writes for a pod no node fits."""
        meta = pod["metadata"]
        scheduled = condition("PodScheduled", False, "Unschedulable")
        scheduled["message"] = ("0/1 nodes are available: 1 node(s) didn't match Pod's node "
                                "affinity/selector.")
        conditions = (pod.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
               for c in conditions):
            return
        try:
            call(self.core.patch_namespaced_pod_status, meta["name"], meta["namespace"],
                 {"status": {"conditions": [scheduled]}})
        except client.ApiException as exc:
            if exc.status != 404:
                log.warning("marking %s/%s unschedulable failed: %s", meta["namespace"],
                            meta["name"], exc.reason)

    def bind(self, pod: Json) -> None:
        meta = pod["metadata"]
        binding = {
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": meta["name"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }  # fmt: skip
        try:
            call(self.core.create_namespaced_pod_binding, meta["name"], meta["namespace"], binding)
        except client.ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("binding %s/%s failed: %s", meta["namespace"], meta["name"], exc.reason)

    def delete_now(self, pod: Json) -> None:
        """Finish a deletion as the kubelet does: terminal status first, then grace period 0."""
        meta = pod["metadata"]
        self.deleting.add(meta["uid"])
        worker = self.workers.get(meta["uid"])
        if worker is None or not worker.finished:
            phase = (pod.get("status") or {}).get("phase")
            if phase not in ("Succeeded", "Failed"):
                with contextlib.suppress(client.ApiException):
                    body = {
                        "status": {
                            "phase": "Failed",
                            "reason": "Terminated",
                            "message": "pod deleted",
                        }
                    }
                    call(
                        self.core.patch_namespaced_pod_status, meta["name"], meta["namespace"], body
                    )
        try:
            call(
                self.core.delete_namespaced_pod, meta["name"], meta["namespace"],
                # in the body: with a body, the API server ignores the query parameter
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
            )  # fmt: skip
        except client.ApiException as exc:
            if exc.status not in (404, 409):
                log.warning(
                    "deleting %s/%s failed: %s", meta["namespace"], meta["name"], exc.reason
                )

    def forget(self, pod: Json) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.workers.pop(uid, None)
        if worker is not None and worker.is_alive():
            worker.request_stop(0)
        self.deleting.discard(uid)

    def shutdown(self) -> None:
        """Stop every pod's processes (the agent's own exit must not leave any behind)."""
        self.stopping.set()
        for worker in list(self.workers.values()):
            for container in worker.inits + worker.containers:
                container.kill(signal.SIGKILL)
            worker.stop_requested.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node-name", default="prs-node-0")
    parser.add_argument("--root", type=Path, required=True, help="pods, logs and PVC folders")
    parser.add_argument("--api-port", type=int, default=443, help="KUBERNETES_SERVICE_PORT of pods")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s %(message)s"
    )
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=args.kubeconfig, client_configuration=configuration
    )
    configuration.connection_pool_maxsize = 32
    api = client.ApiClient(configuration)
    agent = NodeAgent(api, args.node_name, args.root, args.api_port)

    def on_signal(signum: int, _frame: object) -> None:
        agent.shutdown()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.register_node()
    threading.Thread(target=agent.heartbeat_forever, name="heartbeat", daemon=True).start()
    log.info("node %s ready; running pods under %s", args.node_name, args.root)
    agent.watch_pods()
    return 0


if __name__ == "__main__":
    sys.exit(main())
