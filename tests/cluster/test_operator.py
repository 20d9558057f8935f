"""The operator on the real control plane: steps applied as resources run as plan Job,
Indexed Job and merge Job (pods run by the node agent), with the chart's RBAC."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from kubernetes import client

from .controlplane import ControlPlane
from .crd_install import GROUP, PLURAL, VERSION
from .operator_process import OperatorProcess
from .pod_sandbox import call
from .step_scenarios import stage_digits

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "digits"


@pytest.fixture(scope="module")
def digits_data() -> Path:
    subprocess.run([sys.executable, str(DIGITS / "prepare.py")], check=True, timeout=300)
    return DIGITS


def prs(*args: str, kubeconfig: Path | None = None, timeout: float = 300) -> (
        subprocess.CompletedProcess[str]):
    env = {**os.environ, **({"KUBECONFIG": str(kubeconfig)} if kubeconfig else {})}
    return subprocess.run([sys.executable, "-m", "prs_runner.commands.prs_cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def get_step(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    with plane.api_client() as api:
        step: dict[str, Any] = call(client.CustomObjectsApi(api).get_namespaced_custom_object,
                                    GROUP, VERSION, namespace, PLURAL, name)
    return step


def describe(plane: ControlPlane, operator: OperatorProcess, namespace: str) -> str:
    shown = plane.kubectl("get", "prs,jobs,pods", "-n", namespace, "-o", "wide", check=False)
    events = plane.kubectl("get", "events", "-n", namespace, check=False)
    return f"{shown.stdout}\n{events.stdout}\noperator log:\n{operator.log_tail()}"


def test_digits_resource_completes_with_the_output_of_prs_run(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str, digits_data: Path,
    tmp_path: Path,
) -> None:
    claim = stage_digits(control_plane, namespace)
    local = prs("run", str(DIGITS / "step.yaml"), "--output-uri", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr

    submitted = prs("submit", str(DIGITS / "cluster-step.yaml"), "-n", namespace,
                    kubeconfig=control_plane.kubeconfig)
    assert submitted.returncode == 0, submitted.stderr
    waited = control_plane.kubectl("wait", "--for=condition=Complete", "prs/predict-digits",
                                   "-n", namespace, "--timeout=240s", check=False,
                                   timeout=250)
    assert waited.returncode == 0, describe(control_plane, operator, namespace)

    output = claim / "out" / "predict-digits"
    cluster_text = (output / "parallel_run_step.txt").read_bytes()
    assert cluster_text == (tmp_path / "local" / "parallel_run_step.txt").read_bytes()
    report = json.loads((output / "_prs" / "report" / "job_result.json").read_text())
    status = get_step(control_plane, namespace, "predict-digits")["status"]
    assert status["phase"] == "Succeeded"
    assert status["miniBatches"] == report["miniBatches"]
    assert status["items"] == report["items"]
    assert status["items"]["succeeded"] == 1797
    assert status["output"]["rows"] == 1797
    assert status["progress"] == "180/180"
    assert status["duration"]


SALES = REPO / "examples" / "sales"


def test_the_many_models_sales_step_on_the_cluster_equals_prs_run(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str, tmp_path: Path,
) -> None:
    """Tabular input in pods: partitionKeys from hive folders, one model per store x brand,
    Parquet output, byte for byte what `prs run` writes."""
    subprocess.run([sys.executable, str(SALES / "generate.py")], check=True, timeout=300)
    claim = control_plane.pvc_path(namespace, "data")
    shutil.copytree(SALES / "data" / "parquet", claim / "sales")
    local = prs("run", str(SALES / "forecast.yaml"), "--output-uri", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    submitted = prs("submit", str(SALES / "forecast.yaml"), "-n", namespace,
                    "--set", "input.uri=pvc://data/sales",
                    "--set", "output.uri=pvc://data/out/forecast-sales", "--wait",
                    "--timeout", "240", kubeconfig=control_plane.kubeconfig)
    assert submitted.returncode == 0, (
        f"{submitted.stdout}{submitted.stderr}\n{describe(control_plane, operator, namespace)}")
    cluster = pq.read_table(claim / "out" / "forecast-sales" / "forecasts.parquet")
    expected = pq.read_table(tmp_path / "local" / "forecasts.parquet")
    assert cluster.schema.equals(expected.schema)
    for column in ("id", "store", "brand"):  # the same rows, exactly once, in the same order
        assert cluster[column].equals(expected[column]), column
    # LAPACK's least squares may differ in the last bit between processes (memory alignment
    # picks the SIMD path), so the fitted values are compared to within a few ulps.
    assert np.allclose(cluster["fitted_units"].to_numpy(), expected["fitted_units"].to_numpy(),
                       rtol=1e-12, atol=0)
    status = get_step(control_plane, namespace, "forecast-sales")["status"]
    assert status["miniBatches"]["total"] == 12  # 4 stores x 3 brands
    assert "records in 12 mini-batches" in next(
        c["message"] for c in status["conditions"] if c["type"] == "Planned")
