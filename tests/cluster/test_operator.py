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

import pytest
from kubernetes import client

from .controlplane import ControlPlane
from .crd_install import GROUP, PLURAL, VERSION
from .operator_process import OperatorProcess
from .pod_sandbox import call

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "digits"


@pytest.fixture(scope="module")
def digits_data() -> Path:
    subprocess.run([sys.executable, str(DIGITS / "prepare.py")], check=True, timeout=300)
    return DIGITS


def stage_digits(plane: ControlPlane, namespace: str) -> Path:
    claim = plane.pvc_path(namespace, "data")
    shutil.copytree(DIGITS / "data" / "digits", claim / "digits")
    shutil.copytree(DIGITS / "models", claim / "models")
    return claim


def prs(*args: str, kubeconfig: Path | None = None, timeout: float = 300) -> (
        subprocess.CompletedProcess[str]):
    env = {**os.environ, **({"KUBECONFIG": str(kubeconfig)} if kubeconfig else {})}
    return subprocess.run([sys.executable, "-m", "prs_runner.cli", *args], env=env,
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
    local = prs("run", str(DIGITS / "step.yaml"), "--output", str(tmp_path / "local"))
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
