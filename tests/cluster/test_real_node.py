"""Pods on real nodes (real_node.py): kubelet + containerd + runc, the real scheduler, CNI,
kube-proxy and CoreDNS."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from .controlplane import wait_for
from .pod_sandbox import call
from .real_node import BASE_IMAGE, RealCluster, describe

pytestmark = pytest.mark.cluster

# Runs as uid 10001 on a read-only root filesystem, resolves the Service "echo" of its own
# namespace (short name, through the search path and CoreDNS) and prints what it saw.
SCRIPT = """
import os, socket
print("uid", os.getuid(), "gid", os.getgid())
status = open("/proc/self/status").read().splitlines()
print(*(line for line in status if line.startswith(("Seccomp:", "CapEff:", "NoNewPrivs:"))))
try:
    open("/probe", "w")
    print("root filesystem: writable")
except OSError as exc:
    print("root filesystem:", exc.strerror)
import time
def resolve(name):
    # A Service made a moment ago reaches CoreDNS and every kube-proxy within seconds;
    # clients retry, and so does this one (for at most 30 s).
    deadline = time.monotonic() + 30
    while True:
        try:
            return socket.gethostbyname(name)
        except socket.gaierror:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
print("echo ->", resolve("echo"))
print("kubernetes ->", resolve("kubernetes.default.svc.cluster.local"))
"""


@pytest.fixture
def real_namespace(real_cluster: RealCluster) -> Iterator[str]:
    name = f"r-{uuid.uuid4().hex[:10]}"
    with real_cluster.plane.api_client() as api:
        core = client.CoreV1Api(api)
        # The pods below pass the restricted Pod Security Standard, enforced here.
        labels = {"pod-security.kubernetes.io/enforce": "restricted"}
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
        )
        real_cluster.plane.wait_for_service_account(name)
        yield name
        core.delete_namespace(name, propagation_policy="Background")


def pod(name: str, command: list[str], **spec: Any) -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "securityContext": {
                "runAsUser": 10001, "runAsGroup": 10001, "runAsNonRoot": True,
                "seccompProfile": {"type": "RuntimeDefault"},  # containerd's default profile
            },
            "containers": [{
                "name": "main",
                "image": BASE_IMAGE,
                "imagePullPolicy": "Never",  # imported into containerd; there is no registry
                "command": command,
                "securityContext": {
                    "readOnlyRootFilesystem": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }],
            **spec,
        },
    }  # fmt: skip


@pytest.mark.parametrize("node", [0, 1])
def test_pod_runs_as_10001_read_only_and_resolves_a_service(
    real_cluster: RealCluster, real_namespace: str, node: int
) -> None:
    if node >= len(real_cluster.nodes):
        pytest.fail(f"only {len(real_cluster.nodes)} real nodes")
    node_name = real_cluster.nodes[node].name
    with real_cluster.plane.api_client() as api:
        core = client.CoreV1Api(api)
        service = call(core.create_namespaced_service, real_namespace, {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
            "spec": {"ports": [{"port": 80}]},
        })  # fmt: skip
        cluster_ip = service["spec"]["clusterIP"]
        core.create_namespaced_pod(real_namespace, pod(
            "probe", ["python3", "-c", SCRIPT],
            nodeSelector={"prs.test/real-node": str(node)},
        ))  # fmt: skip

        def finished() -> Any:
            found = call(core.read_namespaced_pod, "probe", real_namespace)
            return found if found["status"].get("phase") in ("Succeeded", "Failed") else None

        try:
            done = wait_for(finished, 120, "the probe pod to finish")
        except AssertionError:
            pytest.fail(describe(real_cluster, real_namespace), pytrace=False)
    logs = real_cluster.plane.kubectl("-n", real_namespace, "logs", "probe").stdout
    assert done["status"]["phase"] == "Succeeded", logs + describe(real_cluster, real_namespace)
    assert done["spec"]["nodeName"] == node_name
    assert "uid 10001 gid 10001" in logs
    assert "root filesystem: Read-only file system" in logs
    assert "Seccomp:\t2" in logs  # filter mode: the runtime's default profile
    assert "CapEff:\t0000000000000000" in logs
    assert "NoNewPrivs:\t1" in logs
    assert f"echo -> {cluster_ip}" in logs
    assert "kubernetes -> 10.96.0.1" in logs
    status = done["status"]["containerStatuses"][0]
    assert status["imageID"].startswith("sha256:") or "@sha256:" in status["imageID"]
    assert status["containerID"].startswith("containerd://")


def test_unsatisfiable_node_selector_stays_pending(
    real_cluster: RealCluster, real_namespace: str
) -> None:
    with real_cluster.plane.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_pod(real_namespace, pod(
            "nowhere", ["true"], nodeSelector={"prs.test/real-node": "nowhere"},
        ))  # fmt: skip

        def unschedulable() -> Any:
            found = call(core.read_namespaced_pod, "nowhere", real_namespace)
            for condition in found["status"].get("conditions") or []:
                if condition["type"] == "PodScheduled" and condition["status"] == "False":
                    return condition
            return None

        condition = wait_for(unschedulable, 60, "the scheduler to give up on the pod")
        assert condition["reason"] == "Unschedulable"
        assert "node(s) didn't match Pod's node affinity/selector" in condition["message"]
        time.sleep(3)
        still = call(core.read_namespaced_pod, "nowhere", real_namespace)
        assert still["status"]["phase"] == "Pending"
        assert not still["spec"].get("nodeName")


def test_memory_limit_ends_in_oomkilled(real_cluster: RealCluster, real_namespace: str) -> None:
    """cgroup v1 memory limits: the kernel kills the container, containerd reports OOMKilled."""
    hog = "chunks = []\nwhile True:\n    chunks.append(b'x' * (16 << 20))"
    spec = pod("hog", ["python3", "-c", hog])
    spec["spec"]["containers"][0]["resources"] = {
        "limits": {"memory": "64Mi", "cpu": "500m"}, "requests": {"memory": "64Mi", "cpu": "100m"},
    }  # fmt: skip
    with real_cluster.plane.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_pod(real_namespace, spec)

        def failed() -> Any:
            found = call(core.read_namespaced_pod, "hog", real_namespace)
            return found if found["status"].get("phase") in ("Succeeded", "Failed") else None

        try:
            done = wait_for(failed, 120, "the memory hog to end")
        except AssertionError:
            pytest.fail(describe(real_cluster, real_namespace), pytrace=False)
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert done["status"]["phase"] == "Failed"
    assert terminated["reason"] == "OOMKilled", terminated
    assert terminated["exitCode"] == 137


def test_local_persistent_volume_is_written_as_10001(
    real_cluster: RealCluster, real_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A local PersistentVolume on node 0, bound when the pod is scheduled (WaitForFirstConsumer),
    owned by the pod's fsGroup so that uid 10001 writes to it."""
    node = real_cluster.nodes[0]
    folder = tmp_path_factory.mktemp("local-pv")
    storage_class = f"prs-local-{real_namespace}"
    with real_cluster.plane.api_client() as api:
        storage = client.StorageV1Api(api)
        core = client.CoreV1Api(api)
        # Plain dicts (typed Any: the client takes dicts as request bodies, its stubs say V1...)
        storage_class_body: Any = {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": storage_class},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "WaitForFirstConsumer",
        }  # fmt: skip
        storage.create_storage_class(storage_class_body)
        volume: Any = {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": storage_class},
            "spec": {
                "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain", "storageClassName": storage_class,
                "local": {"path": str(folder)},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{
                    "key": "kubernetes.io/hostname", "operator": "In", "values": [node.name],
                }]}]}},
            },
        }  # fmt: skip
        core.create_persistent_volume(volume)
        claim: Any = {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "work"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                     "resources": {"requests": {"storage": "1Gi"}}},
        }  # fmt: skip
        try:
            core.create_namespaced_persistent_volume_claim(real_namespace, claim)
            writer = pod("writer", ["python3", "-c", (
                "import os; open('/data/out.txt', 'w').write('written by %d' % os.getuid()); "
                "print(oct(os.stat('/data').st_mode), os.stat('/data').st_gid)"
            )])  # fmt: skip
            writer["spec"]["securityContext"]["fsGroup"] = 10001
            writer["spec"]["containers"][0]["volumeMounts"] = [
                {"name": "work", "mountPath": "/data"}
            ]
            writer["spec"]["volumes"] = [
                {"name": "work", "persistentVolumeClaim": {"claimName": "work"}}
            ]
            core.create_namespaced_pod(real_namespace, writer)

            def finished() -> Any:
                found = call(core.read_namespaced_pod, "writer", real_namespace)
                return found if found["status"].get("phase") in ("Succeeded", "Failed") else None

            try:
                done = wait_for(finished, 120, "the writer pod to finish")
            except AssertionError:
                pytest.fail(describe(real_cluster, real_namespace), pytrace=False)
            logs = real_cluster.plane.kubectl("-n", real_namespace, "logs", "writer").stdout
            assert done["status"]["phase"] == "Succeeded", logs
            assert done["spec"]["nodeName"] == node.name
            assert (folder / "out.txt").read_text() == "written by 10001"
            assert (folder / "out.txt").stat().st_uid == 10001
            assert folder.stat().st_gid == 10001  # fsGroup applied by kubelet
        finally:
            core.delete_namespaced_pod("writer", real_namespace, grace_period_seconds=0)
            core.delete_namespaced_persistent_volume_claim("work", real_namespace)
            core.delete_persistent_volume(storage_class)
            storage.delete_storage_class(storage_class)


def test_drain_moves_a_deployment_to_the_other_node(
    real_cluster: RealCluster, real_namespace: str
) -> None:
    """kubectl drain cordons a node and evicts its pods (Eviction API); the Deployment's pod
    comes back on the other node."""
    if len(real_cluster.nodes) < 2:
        pytest.fail("drain needs two real nodes")
    first, second = real_cluster.nodes[0].name, real_cluster.nodes[1].name
    template = pod("sleeper", ["python3", "-c", "import time; time.sleep(3600)"])
    deployment: Any = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sleeper"},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "sleeper"}},
            "template": {
                "metadata": {"labels": {"app": "sleeper"}},
                "spec": {**template["spec"], "restartPolicy": "Always",
                         "terminationGracePeriodSeconds": 1,
                         "nodeSelector": {"prs.test/real-node": "0"}},
            },
        },
    }  # fmt: skip
    with real_cluster.plane.api_client() as api:
        apps = client.AppsV1Api(api)
        core = client.CoreV1Api(api)
        apps.create_namespaced_deployment(real_namespace, deployment)

        def running_on() -> str | None:
            pods = call(core.list_namespaced_pod, real_namespace, label_selector="app=sleeper")
            for item in pods["items"]:
                if item["status"].get("phase") == "Running" and not item["metadata"].get(
                    "deletionTimestamp"
                ):
                    return str(item["spec"]["nodeName"])
            return None

        assert wait_for(running_on, 120, "the sleeper to run") == first
        # Let it go anywhere, then drain the node it runs on.
        apps.patch_namespaced_deployment("sleeper", real_namespace, [
            {"op": "remove", "path": "/spec/template/spec/nodeSelector"},
        ])  # fmt: skip

        def rolled_out() -> bool:
            found = call(apps.read_namespaced_deployment_status, "sleeper", real_namespace)
            status = found.get("status", {})
            return bool(status.get("updatedReplicas") == 1 and status.get("replicas") == 1
                        and status.get("availableReplicas") == 1)  # fmt: skip

        wait_for(rolled_out, 120, "the sleeper to roll out without its nodeSelector")
        where = wait_for(running_on, 60, "the rolled-out sleeper to run")
        other = second if where == first else first
        try:
            drained = real_cluster.plane.kubectl(
                "drain", where, "--ignore-daemonsets", "--delete-emptydir-data",
                "--pod-selector=app=sleeper", "--timeout=90s", check=False, timeout=120,
            )  # fmt: skip
            assert drained.returncode == 0, drained.stdout + drained.stderr
            assert "evicting pod" in drained.stdout + drained.stderr
            assert call(core.read_node, where)["spec"].get("unschedulable") is True
            assert wait_for(running_on, 120, "the sleeper on the other node") == other
        finally:
            real_cluster.plane.kubectl("uncordon", where, check=False)
