"""The operator as a real pod: the project's images (built with Docker as in the images tier,
then `docker save` | `ctr import` into every real node), the chart installed by the real helm
into a namespace that enforces the restricted Pod Security Standard, and a step whose plan,
run and merge Jobs run on the real nodes against a local PersistentVolume."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.chart.helm_cli import CHART, Helm
from tests.images.docker_engine import (
    DockerEngine,
    DockerError,
    build_operator_image,
    build_runner_image,
)

from .crd_install import install_crd
from .pod_sandbox import call
from .real_node import RealCluster, describe
from .step_scenarios import ECHO_SCRIPT, create_step, step_document, wait_finished

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]  # the first image build
RUNNER_IMAGE = "parallelrunstep/runner:real-nodes"
OPERATOR_IMAGE = "parallelrunstep/operator:real-nodes"
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
PRS_UID = 10001


@pytest.fixture(scope="module")
def operator_release(
    real_cluster: RealCluster, helm: Helm, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The chart's release in namespace prs-system, its operator pod Ready; yields the
    namespace."""
    try:
        engine = DockerEngine.start()
        base = engine.base_image()
        build_runner_image(engine, base, RUNNER_IMAGE)
        build_operator_image(engine, base, OPERATOR_IMAGE)
        archive = tmp_path_factory.mktemp("images") / "images.tar"
        engine.docker("save", "-o", str(archive), RUNNER_IMAGE, OPERATOR_IMAGE, timeout=600)
    except DockerError as exc:
        pytest.fail(f"the project's images: {exc}", pytrace=False)
    real_cluster.import_images(archive)
    archive.unlink()
    plane = real_cluster.plane
    namespace = "prs-system"
    with plane.api_client() as api:
        install_crd(api)
        client.CoreV1Api(api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels=RESTRICTED))
        )
    repository, tag = OPERATOR_IMAGE.split(":")
    runner_repository, runner_tag = RUNNER_IMAGE.split(":")
    installed = helm.run(
        "install", "prs", str(CHART), "--kubeconfig", str(plane.kubeconfig), "-n", namespace,
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "image.pullPolicy=Never",  # imported into containerd; there is no registry
        "--set", f"runnerImage.repository={runner_repository}",
        "--set", f"runnerImage.tag={runner_tag}",
        "--wait", "--timeout", "180s",
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr + describe(real_cluster, namespace)
    yield namespace
    helm.run("uninstall", "prs", "--kubeconfig", str(plane.kubeconfig), "-n", namespace)


def local_claim(
    core: client.CoreV1Api, storage: client.StorageV1Api, namespace: str, node: str, path: Path
) -> str:
    """Claim `data` of the namespace, bound to a local PersistentVolume at PATH on NODE."""
    name = f"local-{namespace}"
    storage_class: Any = {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
        "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer",
    }  # fmt: skip
    storage.create_storage_class(storage_class)
    volume: Any = {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": name,
            "local": {"path": str(path)},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{
                "key": "kubernetes.io/hostname", "operator": "In", "values": [node],
            }]}]}},
        },
    }  # fmt: skip
    core.create_persistent_volume(volume)
    claim: Any = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": name,
                 "resources": {"requests": {"storage": "1Gi"}}},
    }  # fmt: skip
    core.create_namespaced_persistent_volume_claim(namespace, claim)
    return name


def test_helm_installed_operator_runs_a_step_on_real_nodes(
    real_cluster: RealCluster, operator_release: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    plane = real_cluster.plane
    namespace = f"r-{uuid.uuid4().hex[:10]}"
    data = tmp_path_factory.mktemp("step-data")
    (data / "in").mkdir()
    for number in range(6):
        (data / "in" / f"item{number:04d}.txt").write_text(f"{number}\n")
    for path in [data, *data.rglob("*")]:
        os.chown(path, PRS_UID, PRS_UID)  # the claim as an admin would prepare it
    with plane.api_client() as api:
        core, storage = client.CoreV1Api(api), client.StorageV1Api(api)
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels=RESTRICTED))
        )
        plane.wait_for_service_account(namespace)
        volume = local_claim(core, storage, namespace, real_cluster.nodes[0].name, data)
        call(core.create_namespaced_config_map, namespace,
             {"metadata": {"name": "code"}, "data": {"score.py": ECHO_SCRIPT}})  # fmt: skip
        try:
            create_step(plane, namespace, step_document("echo"))
            try:
                status = wait_finished(plane, namespace, "echo", timeout=300)
            except AssertionError:
                pytest.fail(describe(real_cluster, namespace), pytrace=False)
            assert status.get("phase") == "Succeeded", (status, describe(real_cluster, namespace))
            pods = call(core.list_namespaced_pod, namespace, label_selector="parallelrun.io/step")
            assert {p["spec"]["nodeName"] for p in pods["items"]} == {real_cluster.nodes[0].name}
            assert {p["status"]["phase"] for p in pods["items"]} == {"Succeeded"}
            output = data / "out" / "echo" / "parallel_run_step.txt"
            assert output.read_text().splitlines() == [f"item{n:04d}.txt" for n in range(6)]
            assert output.stat().st_uid == PRS_UID
            operator_pods = call(core.list_namespaced_pod, operator_release)["items"]
            assert [p["status"]["phase"] for p in operator_pods] == ["Running"]
        finally:
            core.delete_namespace(namespace, propagation_policy="Background")
            core.delete_persistent_volume(volume)
            storage.delete_storage_class(volume)
