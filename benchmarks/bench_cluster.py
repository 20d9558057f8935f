"""The operator benchmarks' common setup: the test control plane (built from Kubernetes'
modules, pods run by the node agent), the CRD, the benchmark's namespaces, and the operator
as a local process with the chart's rules."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes import client

from tests.cluster.controlplane import ControlPlane, build_binaries
from tests.cluster.crd_install import install_crd
from tests.cluster.operator_process import OperatorProcess, grant_operator_rules
from tests.cluster.pod_sandbox import call


@contextmanager
def bench_cluster(prefix: str, namespaces: tuple[str, ...],
                  prepare: Callable[[Any], None] | None = None
                  ) -> Iterator[tuple[ControlPlane, Path]]:
    """A running control plane with the CRD and NAMESPACES (their default service accounts
    ready); PREPARE gets the core API first. Everything stops on the way out."""
    bin_dir = build_binaries()
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        work = Path(folder)
        plane = ControlPlane.start(work / "plane", bin_dir)
        try:
            with plane.api_client() as api:
                install_crd(api)
                core: Any = client.CoreV1Api(api)
                if prepare is not None:
                    prepare(core)
                for namespace in namespaces:
                    call(core.create_namespace, {"metadata": {"name": namespace}})
            for namespace in namespaces:
                plane.wait_for_service_account(namespace)
            yield plane, work
        finally:
            plane.stop()


@contextmanager
def running_operator(plane: ControlPlane, work: Path) -> Iterator[OperatorProcess]:
    operator = OperatorProcess(grant_operator_rules(plane, work), work)
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()
