"""The cluster tier's own ground: the real Job controller drives pods run by the node agent."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from .controlplane import ControlPlane, wait_for
from .pod_sandbox import call

pytestmark = pytest.mark.cluster
CLAIM = "work"
MOUNT_PATH = "/prs-cluster-test-data"  # absent on the host: the agent makes and removes it




def indexed_job(name: str, script: str, **spec: Any) -> Any:
    """An Indexed Job of 3 pods running ``python -c script`` with the claim at MOUNT_PATH.

    A plain dict (typed Any: the client takes dicts as request bodies, its stubs say V1Job).
    """
    container = {
        "name": "main",
        "image": "python:3.11-slim",  # recorded, not pulled: the node agent runs the command
        "command": ["python", "-c", script],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "DATA", "value": MOUNT_PATH},
        ],
        "volumeMounts": [{"name": "data", "mountPath": MOUNT_PATH}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "completionMode": "Indexed",
            "completions": 3,
            "parallelism": 3,
            "backoffLimitPerIndex": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 5,
                    "containers": [container],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": CLAIM}}],
                }
            },
            **spec,
        },
    }


@pytest.fixture
def batch(control_plane: ControlPlane) -> Iterator[client.BatchV1Api]:
    with control_plane.api_client() as api:
        yield client.BatchV1Api(api)


@pytest.fixture
def core(control_plane: ControlPlane) -> Iterator[client.CoreV1Api]:
    with control_plane.api_client() as api:
        yield client.CoreV1Api(api)


def job_condition(batch: client.BatchV1Api, namespace: str, name: str, kind: str) -> Any:
    job = batch.read_namespaced_job_status(name, namespace)
    assert job.status is not None
    for found in job.status.conditions or []:
        if found.type == kind and found.status == "True":
            return found
    return None


def job_pods(core: client.CoreV1Api, namespace: str, name: str) -> list[Any]:
    return list(core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items)


def test_node_is_ready_and_rbac_is_on(control_plane: ControlPlane, namespace: str) -> None:
    nodes = control_plane.kubectl("get", "nodes", "-o", "name").stdout.split()
    assert nodes == [f"node/{control_plane.node_name}"]
    can_i = control_plane.kubectl(
        "auth", "can-i", "list", "pods", "-n", namespace,
        f"--as=system:serviceaccount:{namespace}:default", check=False,
    )  # fmt: skip
    assert can_i.stdout.strip() == "no"


@pytest.mark.timeout(120)
def test_indexed_job_completes_and_writes_every_index(
    control_plane: ControlPlane, namespace: str, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    script = (
        "import os, pathlib\n"
        "index = os.environ['JOB_COMPLETION_INDEX']\n"
        "pathlib.Path(os.environ['DATA'], index).write_text(os.environ['POD_NAME'])\n"
        "pathlib.Path('/dev/termination-log').write_text('done ' + index)\n"
    )
    batch.create_namespaced_job(namespace, indexed_job("writer", script))
    wait_for(lambda: job_condition(batch, namespace, "writer", "Complete"), 90, "Job Complete")

    folder = control_plane.pvc_path(namespace, CLAIM)
    assert sorted(path.name for path in folder.iterdir()) == ["0", "1", "2"]
    pods = job_pods(core, namespace, "writer")
    assert {
        (folder / pod.metadata.annotations["batch.kubernetes.io/job-completion-index"]).read_text()
        for pod in pods
    } == {pod.metadata.name for pod in pods}
    messages = {pod.status.container_statuses[0].state.terminated.message for pod in pods}
    assert messages == {"done 0", "done 1", "done 2"}
    assert all(pod.status.phase == "Succeeded" for pod in pods)
    wait_for(lambda: not Path(MOUNT_PATH).exists(), 10, f"{MOUNT_PATH} removed from the host")


@pytest.mark.timeout(120)
def test_failed_index_is_retried_per_index(
    control_plane: ControlPlane, namespace: str, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    script = (
        "import os, pathlib, sys\n"
        "index = os.environ['JOB_COMPLETION_INDEX']\n"
        "marker = pathlib.Path(os.environ['DATA'], 'attempted-' + index)\n"
        "if index == '1' and not marker.exists():\n"
        "    marker.touch()\n"
        "    sys.exit(1)\n"
        "pathlib.Path(os.environ['DATA'], index).write_text('ok')\n"
    )
    batch.create_namespaced_job(namespace, indexed_job("retry", script, backoffLimitPerIndex=2))
    wait_for(lambda: job_condition(batch, namespace, "retry", "Complete"), 90, "Job Complete")

    job = batch.read_namespaced_job_status("retry", namespace)
    assert job.status is not None
    assert job.status.succeeded == 3
    assert job.status.failed == 1
    assert job.status.failed_indexes in (None, "")
    folder = control_plane.pvc_path(namespace, CLAIM)
    assert {"0", "1", "2", "attempted-1"} == {path.name for path in folder.iterdir()}
    failed = [pod for pod in job_pods(core, namespace, "retry") if pod.status.phase == "Failed"]
    assert [pod.status.container_statuses[0].state.terminated.exit_code for pod in failed] == [1]


@pytest.mark.timeout(120)
def test_pod_failure_policy_fails_the_job_at_once(
    namespace: str, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    script = (
        "import os, sys, time\n"
        "if os.environ['JOB_COMPLETION_INDEX'] == '0':\n"
        "    sys.exit(42)\n"
        "time.sleep(300)\n"
    )
    policy = {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]},
            },
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        ]
    }
    batch.create_namespaced_job(
        namespace, indexed_job("fatal", script, backoffLimitPerIndex=3, podFailurePolicy=policy)
    )
    failed = wait_for(lambda: job_condition(batch, namespace, "fatal", "Failed"), 90, "Job Failed")
    assert failed.reason == "PodFailurePolicy"

    # no retry of index 0, and the still running indexes are stopped and their pods removed
    def index_pods() -> list[str]:
        return [
            pod.metadata.annotations["batch.kubernetes.io/job-completion-index"]
            for pod in job_pods(core, namespace, "fatal")
        ]

    wait_for(lambda: index_pods() == ["0"], 30, "only the failed pod of index 0 left")
    job = batch.read_namespaced_job_status("fatal", namespace)
    assert job.status is not None
    assert not job.status.active


@pytest.mark.timeout(120)
def test_background_deletion_garbage_collects_the_pods(
    namespace: str, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    marker = f"sleeper in {namespace}"
    batch.create_namespaced_job(
        namespace, indexed_job("sleeper", f"import time; time.sleep(300)  # {marker}")
    )

    def all_running() -> bool:
        pods = job_pods(core, namespace, "sleeper")
        return len(pods) == 3 and all(pod.status.phase == "Running" for pod in pods)

    wait_for(all_running, 60, "3 running pods")
    batch.delete_namespaced_job("sleeper", namespace, propagation_policy="Background")
    wait_for(lambda: not job_pods(core, namespace, "sleeper") or None, 60, "pods garbage-collected")
    wait_for(lambda: not processes_with(marker) or None, 10, "pod processes gone")


def processes_with(text: str) -> list[int]:
    """Pids of the processes whose command line contains ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


POD_CHECKS = """
import json, os, pathlib, sys
from kubernetes import client, config
scratch = pathlib.Path('/prs-cluster-test-scratch')
first = not (scratch / 'attempted').exists()
(scratch / 'attempted').touch()
if first:
    print('first attempt fails on purpose', flush=True)
    sys.exit(3)
try:
    pathlib.Path('/prs-cluster-test-cfg/new').write_text('x')
    read_only = False
except OSError:
    read_only = True
config.load_incluster_config()
try:
    client.CoreV1Api().list_namespaced_pod(os.environ['NS'])
    api_status = 200
except client.ApiException as exc:
    api_status = exc.status
report = {
    'cwd': os.getcwd(),
    'init': (scratch / 'init.txt').read_text(),
    'cfg': pathlib.Path('/prs-cluster-test-cfg/sub/a.txt').read_text(),
    'cfg_files': sorted(p.name for p in pathlib.Path('/prs-cluster-test-cfg').iterdir()),
    'secret': pathlib.Path('/prs-cluster-test-sec/token').read_text(),
    'read_only': read_only,
    'api_status': api_status,
    'env': {k: os.environ.get(k) for k in ('A', 'S', 'CFG_a', 'CFG_b', 'NODE', 'APP', 'GREETING')},
    'python': sys.executable,
}
pathlib.Path('/prs-cluster-test-pvc/report.json').write_text(json.dumps(report))
"""
LABEL_APP = "metadata.labels['app']"
CFG_ITEM = {"key": "a", "path": "sub/a.txt"}
LAST_WORDS = "print('line one'); print('last words'); raise SystemExit(7)"


@pytest.mark.timeout(120)
def test_pod_volumes_env_restarts_and_messages(
    control_plane: ControlPlane, namespace: str, core: client.CoreV1Api
) -> None:
    cfg = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg"), data={"a": "A", "b": "B"})
    core.create_namespaced_config_map(namespace, cfg)
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name="sec"), string_data={"token": "s3cr3t"}
    )
    core.create_namespaced_secret(namespace, secret)
    scratch = {"name": "scratch", "mountPath": "/prs-cluster-test-scratch"}
    pod: Any = {
        "metadata": {"name": "checks", "labels": {"app": "prs"}},
        "spec": {
            "restartPolicy": "OnFailure",
            "initContainers": [{
                "name": "init", "image": "busybox", "volumeMounts": [scratch],
                "command": ["sh", "-c", "echo from-init > /prs-cluster-test-scratch/init.txt"],
            }],
            "containers": [{
                "name": "main", "image": "python", "command": ["python", "-c", POD_CHECKS],
                "workingDir": "/prs-cluster-test-scratch",
                "env": [
                    {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": LABEL_APP}}},
                    {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a"}}},
                    {"name": "S", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
                    {"name": "GREETING", "value": "hello $(APP)"},
                ],
                "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
                "volumeMounts": [
                    scratch,
                    {"name": "cfg", "mountPath": "/prs-cluster-test-cfg", "readOnly": True},
                    {"name": "sec", "mountPath": "/prs-cluster-test-sec"},
                    {"name": "data", "mountPath": "/prs-cluster-test-pvc", "subPath": "nested"},
                ],
            }],
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": "cfg", "items": [CFG_ITEM]}},
                {"name": "sec", "secret": {"secretName": "sec"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": CLAIM}},
            ],
        },
    }  # fmt: skip
    core.create_namespaced_pod(namespace, pod)
    failing: Any = {
        "metadata": {"name": "failing"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "main", "image": "python",
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "command": ["python", "-c", LAST_WORDS],
            }],
        },
    }  # fmt: skip
    core.create_namespaced_pod(namespace, failing)

    def phase(name: str) -> str | None:
        found = core.read_namespaced_pod_status(name, namespace).status
        return found.phase if found and found.phase in ("Succeeded", "Failed") else None

    assert wait_for(lambda: phase("checks"), 60, "pod checks to end") == "Succeeded"
    report = json.loads(
        (control_plane.pvc_path(namespace, CLAIM) / "nested" / "report.json").read_text()
    )
    assert report == {
        "cwd": "/prs-cluster-test-scratch",
        "init": "from-init\n",
        "cfg": "A",
        "cfg_files": ["sub"],
        "secret": "s3cr3t",
        "read_only": True,
        "api_status": 403,  # authenticated as the pod's service account, which may not list pods
        "env": {
            "A": "A", "S": "s3cr3t", "CFG_a": "A", "CFG_b": "B", "NODE": control_plane.node_name,
            "APP": "prs", "GREETING": "hello prs",
        },
        "python": report["python"],
    }  # fmt: skip
    assert Path(report["python"]).parent == Path(sys.executable).parent
    status = call(core.read_namespaced_pod_status, "checks", namespace)["status"]
    assert status["containerStatuses"][0]["restartCount"] == 1

    assert wait_for(lambda: phase("failing"), 60, "pod failing to end") == "Failed"
    status = call(core.read_namespaced_pod_status, "failing", namespace)["status"]
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (7, "Error")
    assert terminated["message"].splitlines()[-2:] == ["line one", "last words"]
    for path in ("/prs-cluster-test-scratch", "/prs-cluster-test-cfg", "/prs-cluster-test-pvc"):
        wait_for(partial(is_absent, Path(path)), 10, f"{path} removed from the host")


def is_absent(path: Path) -> bool:
    return not path.exists()
