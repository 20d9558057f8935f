"""Fixtures of the cluster tier: a real control plane (etcd, kube-apiserver,
kube-controller-manager) plus the node agent, shared by the whole session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.chart.helm_cli import Helm, prebuild_helm, session_helm

from .controlplane import ControlPlane, ControlPlaneError, build_binaries
from .crd_install import install_crd
from .operator_process import OperatorProcess, grant_operator_rules
from .real_node import REAL_CLUSTER_CONTROLLERS, RealCluster, build_node_binaries, image_archives
from .real_release import operator_release  # noqa: F401 (a fixture: the chart on real nodes)

# Filled before the first test runs (outside any per-test timeout): the first build of the
# binaries takes many minutes, later runs find them in the cache.
_build: dict[str, Path | str] = {}
_node_images: list[Path] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    prebuild_helm(session)
    if session.config.option.collectonly:
        return
    if not any("control_plane" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("cluster tier: building or finding the control-plane binaries ...")
    try:
        _build["bin_dir"] = build_binaries()
    except ControlPlaneError as exc:
        _build["error"] = str(exc)
    if any("real_cluster" in getattr(item, "fixturenames", ()) for item in session.items):
        if reporter is not None:
            reporter.write_line("cluster tier: building or finding the real node binaries ...")
        try:
            _build["node_bin_dir"] = build_node_binaries()
            _node_images[:] = image_archives(Path(_build["node_bin_dir"]))
        except ControlPlaneError as exc:
            _build["node_error"] = str(exc)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager + node agent, for the whole session.

    Attributes: ``kubeconfig`` (admin kubeconfig path), ``server`` (https URL),
    ``api_client()``, ``kubectl(*args)``, ``pvc_path(namespace, claim)``, ``node_name``.
    """
    if "error" in _build:
        pytest.fail(f"control plane binaries unavailable: {_build['error']}", pytrace=False)
    try:
        bin_dir = Path(_build["bin_dir"]) if "bin_dir" in _build else build_binaries()
        plane = ControlPlane.start(tmp_path_factory.mktemp("control-plane"), bin_dir)
    except ControlPlaneError as exc:
        pytest.fail(f"control plane did not start: {exc}", pytrace=False)
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    """A second control plane (no node agent) with two real nodes (real_node.py): containerd,
    kubelet and kube-proxy each, kube-scheduler, CoreDNS. For the whole session."""
    for key in ("error", "node_error"):
        if key in _build:
            pytest.fail(f"real node binaries unavailable: {_build[key]}", pytrace=False)
    try:
        bin_dir = Path(_build["bin_dir"]) if "bin_dir" in _build else build_binaries()
        node_bin_dir = (
            Path(_build["node_bin_dir"]) if "node_bin_dir" in _build else build_node_binaries()
        )
        plane = ControlPlane.start(
            tmp_path_factory.mktemp("real-control-plane"), bin_dir,
            node_agent=False, extra_controllers=REAL_CLUSTER_CONTROLLERS,
        )  # fmt: skip
    except ControlPlaneError as exc:
        pytest.fail(f"control plane did not start: {exc}", pytrace=False)
    try:
        cluster = RealCluster.start(
            plane, node_bin_dir, tmp_path_factory.mktemp("real-nodes"),
            archives=_node_images or None,
        )  # fmt: skip
    except ControlPlaneError as exc:
        plane.stop()
        pytest.fail(f"real nodes did not start: {exc}", pytrace=False)
    except BaseException:
        plane.stop()
        raise
    try:
        yield cluster
    finally:
        cluster.stop()
        plane.stop()


@pytest.fixture(scope="session")
def helm() -> Helm:
    """The helm CLI built from Helm's Go module (tools/build-helm.sh), for the chart tests."""
    return session_helm()


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace (with its default service account), deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    with control_plane.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        control_plane.wait_for_service_account(name)
        yield name
        core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="session")
def operator(control_plane: ControlPlane,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """`python -m prs_operator` as the chart's ServiceAccount, for the whole session."""
    with control_plane.api_client() as api:
        install_crd(api)
    workdir = tmp_path_factory.mktemp("operator")
    # Only the test namespaces (t-*): operators of the chart tests watch theirs.
    process = OperatorProcess(grant_operator_rules(control_plane, workdir), workdir, "t-*")
    process.start()
    yield process
    process.stop()
