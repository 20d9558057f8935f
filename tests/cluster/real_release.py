"""The chart's release on the real nodes, shared by the modules that need the operator as a
real pod: the project's images built with Docker, imported into every node's containerd,
and the chart installed by the real helm into a restricted namespace, once per session."""

from __future__ import annotations

from collections.abc import Iterator

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
from .real_node import RealCluster, describe

RUNNER_IMAGE = "parallelrunstep/runner:real-nodes"
OPERATOR_IMAGE = "parallelrunstep/operator:real-nodes"
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
RELEASE = "prs"


@pytest.fixture(scope="session")
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
        "install", RELEASE, str(CHART), "--kubeconfig", str(plane.kubeconfig), "-n", namespace,
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "image.pullPolicy=Never",  # imported into containerd; there is no registry
        "--set", f"runnerImage.repository={runner_repository}",
        "--set", f"runnerImage.tag={runner_tag}",
        "--wait", "--timeout", "180s",
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr + describe(real_cluster, namespace)
    yield namespace
    helm.run("uninstall", RELEASE, "--kubeconfig", str(plane.kubeconfig), "-n", namespace)
