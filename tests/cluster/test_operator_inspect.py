"""`prs status` and the ETA column on a step the operator runs (pods run by the node agent,
which serves no logs: `prs logs` says so; the logs themselves are read from real kubelets in
test_real_inspect.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from .controlplane import ControlPlane
from .operator_process import OperatorProcess
from .step_scenarios import create_step, stage_step, step_document, wait_finished, wait_status

pytestmark = pytest.mark.cluster
DURATION = re.compile(r"^(\d+h)?(\d+m)?\d+s$")


def prs(plane: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.prs_cli", *args, "--kubeconfig",
         str(plane.kubeconfig)], capture_output=True, text=True, timeout=120)


def status_json(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    shown = prs(plane, "status", name, "-n", namespace, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    parsed: dict[str, Any] = json.loads(shown.stdout)
    return parsed


def test_status_eta_and_rows_of_a_step_the_operator_runs(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    stage_step(control_plane, namespace, 12)
    create_step(control_plane, namespace, step_document("eta", env={"SCENARIO_DELAY": "1"}))
    running = wait_status(control_plane, namespace, "eta", "an ETA while running", 120,
                          lambda s: s.get("phase") == "Running" and s.get("eta"))
    assert DURATION.match(running["eta"]), running
    assert 0 < running["miniBatches"]["succeeded"] + running["miniBatches"]["failed"] < 12

    table = control_plane.kubectl("get", "prs", "eta", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "PROGRESS", "ETA", "FAILED", "NODES",
                                "DURATION", "AGE"], table

    view = status_json(control_plane, namespace, "eta")
    assert view["phase"] in ("Running", "Merging", "Succeeded"), view
    rows = {row["shard"]: row for row in view["pods"]}
    assert rows["plan"]["phase"] == "Succeeded" and rows["plan"]["done"] is None
    assert rows["0"]["node"] == control_plane.node_name

    done = wait_finished(control_plane, namespace, "eta")
    assert done["phase"] == "Succeeded" and done["eta"] == "", done
    view = status_json(control_plane, namespace, "eta")
    rows = {row["shard"]: row for row in view["pods"]}
    assert (view["phase"], view["progress"], view["eta"]) == ("Succeeded", "12/12", "")
    assert list(rows) == ["plan", "0", "1", "merge"]
    assert {row["phase"] for row in rows.values()} == {"Succeeded"}
    assert rows["0"]["done"] + rows["1"]["done"] == 12  # the shards' termination messages

    text = prs(control_plane, "status", "eta", "-n", namespace)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0] == f"eta ({namespace}): Succeeded, 12/12 mini-batches"

    # The node agent is no kubelet: the API server cannot fetch a log from it.
    logs = prs(control_plane, "logs", "eta", "-n", namespace)
    assert logs.returncode == 1 and logs.stdout == ""
    lines = logs.stderr.splitlines()
    assert [line.split("]")[0] for line in lines] == ["[shard-0", "[shard-1"], logs.stderr
    assert all("(no log from pod eta-run-" in line for line in lines), logs.stderr


def test_a_step_that_does_not_exist_is_one_line(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    for command in ("status", "logs"):
        shown = prs(control_plane, command, "nosuch", "-n", namespace)
        assert shown.returncode == 1
        assert shown.stderr.splitlines() == [
            f"prs {command}: no ParallelRunStep 'nosuch' in namespace '{namespace}' "
            f"(kubectl get prs -n {namespace})"]
