"""The chart's `helm test` step for real: its hooks (ConfigMap, ServiceAccount, Role,
RoleBinding) as `helm template` renders them, the test script (files/helm-test/check_step.py)
run as the test's own ServiceAccount, and the operator of the session running the step on
the node agent. The test Pod itself needs the operator image (the kind end-to-end runs it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chart.helm_cli import CHART, Helm, only

from .controlplane import ControlPlane
from .operator_process import OperatorProcess, kubeconfig_for
from .test_chart_install import apply_server_side

pytestmark = pytest.mark.cluster


def test_the_helm_test_step_succeeds_with_the_tests_own_account(
        control_plane: ControlPlane, helm: Helm, operator: OperatorProcess, namespace: str,
        tmp_path: Path) -> None:
    docs = helm.template({"helmTest": {"enabled": True, "namespace": namespace,
                                       "claim": "data", "path": "out"}}, include_tests=True)
    hooks = [d for d in docs if (d["metadata"].get("annotations") or {}).get(
        "helm.sh/hook") == "test"]
    pod = only(hooks, "Pod")
    apply_server_side(control_plane, [d for d in hooks if d["kind"] != "Pod"],
                      tmp_path / "hooks.yaml")
    account = pod["spec"]["serviceAccountName"]
    kubeconfig = kubeconfig_for(control_plane, namespace, account, tmp_path / "test.kubeconfig")
    (container,) = pod["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    # The ConfigMap as the Pod mounts it (/helm-test): the script runs from the chart's file.
    done = subprocess.run(
        [sys.executable, str(CHART / "files" / "helm-test" / "check_step.py")],
        env={**{k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"},
             **env, "KUBECONFIG": str(kubeconfig)},
        capture_output=True, text=True, timeout=280)
    report = f"{done.stdout}\n{done.stderr}\n{operator.log_tail()}"
    assert done.returncode == 0, report
    assert f"step {env['STEP_NAME']} succeeded: 5 of 5 items" in done.stdout, report
    # The output, on the claim under helmTest.path: one line per ConfigMap item.
    [result] = (control_plane.pvc_path(namespace, "data") / "out").glob(
        f"{env['STEP_NAME']}/*/parallel_run_step.txt")
    assert sorted(result.read_text().splitlines()) == [
        "item-1.txt: ALPHA", "item-2.txt: BRAVO", "item-3.txt: CHARLIE", "item-4.txt: DELTA",
        "item-5.txt: ECHO"]
    # The step is gone, and the account can do nothing else.
    gone = control_plane.kubectl("get", "prs", env["STEP_NAME"], "-n", namespace, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    user = f"system:serviceaccount:{namespace}:{account}"
    for verb, what in (("list", "parallelrunsteps.parallelrun.io"), ("create", "pods"),
                       ("get", "secrets")):
        allowed = control_plane.kubectl("auth", "can-i", verb, what, f"--as={user}", "-n",
                                        namespace, check=False)
        assert allowed.stdout.strip() == "no", (verb, what)
