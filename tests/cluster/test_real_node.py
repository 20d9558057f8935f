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
try:
    open("/probe", "w")
    print("root filesystem: writable")
except OSError as exc:
    print("root filesystem:", exc.strerror)
print("echo ->", socket.gethostbyname("echo"))
print("kubernetes ->", socket.gethostbyname("kubernetes.default.svc.cluster.local"))
"""


@pytest.fixture
def real_namespace(real_cluster: RealCluster) -> Iterator[str]:
    name = f"r-{uuid.uuid4().hex[:10]}"
    with real_cluster.plane.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
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
            "securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "runAsNonRoot": True},
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
    assert f"echo -> {cluster_ip}" in logs
    assert "kubernetes -> 10.96.0.1" in logs


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
