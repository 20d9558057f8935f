"""Small steps for the operator tests: a code ConfigMap, numbered input files on the `data`
claim, the step resource, and readers for its status, Jobs and pods."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from .controlplane import ControlPlane, wait_for
from .crd_install import GROUP, PLURAL, VERSION
from .pod_sandbox import call

# run() echoes its file names after SCENARIO_DELAY seconds, marks each call under the output
# (calls/<mini-batch>-<pid>-<n>), and raises for files named in SCENARIO_FAIL.
ECHO_SCRIPT = '''
import itertools, os, time
from prs_runner.entry_script import EntryScript

counter = itertools.count()

def init():
    if os.environ.get("SCENARIO_INIT_FAIL"):
        raise RuntimeError(os.environ["SCENARIO_INIT_FAIL"])

def run(mini_batch, context):
    calls = os.path.join(EntryScript().output_dir, "calls")
    os.makedirs(calls, exist_ok=True)
    mark = f"{context.minibatch_index}-{os.getpid()}-{next(counter)}"
    open(os.path.join(calls, mark), "w").close()
    time.sleep(float(os.environ.get("SCENARIO_DELAY", "0")))
    names = [os.path.basename(p) for p in mini_batch]
    failing = set(os.environ.get("SCENARIO_FAIL", "").split(","))
    for name in names:
        if name in failing:
            raise ValueError(f"cannot score {name}")
    return names
'''


def stage_step(plane: ControlPlane, namespace: str, files: int, script: str = ECHO_SCRIPT) -> Path:
    """The claim folder, holding in/item0000.txt ... and the code ConfigMap `code`."""
    claim = plane.pvc_path(namespace, "data")
    (claim / "in").mkdir(parents=True, exist_ok=True)
    for number in range(files):
        (claim / "in" / f"item{number:04d}.txt").write_text(f"{number}\n")
    with plane.api_client() as api:
        call(client.CoreV1Api(api).create_namespaced_config_map, namespace,
             {"metadata": {"name": "code"}, "data": {"score.py": script}})
    return claim


DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"


def stage_digits(plane: ControlPlane, namespace: str) -> Path:
    """The digits example's images and model (prepare.py must have run) on claim `data`."""
    claim = plane.pvc_path(namespace, "data")
    shutil.copytree(DIGITS / "data" / "digits", claim / "digits")
    shutil.copytree(DIGITS / "models", claim / "models")
    return claim


def step_document(name: str, env: dict[str, str] | None = None, labels: dict[str, str] | None
                  = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": {"entryScript": "score.py", "configMap": "code"},
        "input": {"type": "files", "uri": "pvc://data/in"},
        "output": {"uri": f"pvc://data/out/{name}"},
        "miniBatchSize": "1", "nodeCount": 2, "processCountPerNode": 1, "runMaxTry": 1,
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
    }
    body.update(spec)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ParallelRunStep",
            "metadata": {"name": name, "labels": labels or {}}, "spec": body}


def create_step(plane: ControlPlane, namespace: str, document: dict[str, Any]) -> None:
    with plane.api_client() as api:
        call(client.CustomObjectsApi(api).create_namespaced_custom_object, GROUP, VERSION,
             namespace, PLURAL, document)


def patch_step(plane: ControlPlane, namespace: str, name: str, patch: dict[str, Any]) -> None:
    with plane.api_client() as api:
        call(client.CustomObjectsApi(api).patch_namespaced_custom_object, GROUP, VERSION,
             namespace, PLURAL, name, patch)


def status_of(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    with plane.api_client() as api:
        step = call(client.CustomObjectsApi(api).get_namespaced_custom_object, GROUP, VERSION,
                    namespace, PLURAL, name)
    status: dict[str, Any] = step.get("status") or {}
    return status


def condition_true(status: dict[str, Any], kind: str) -> bool:
    return any(c["type"] == kind and c["status"] == "True" for c in status.get("conditions") or [])


def wait_status(plane: ControlPlane, namespace: str, name: str, what: str, timeout: float,
                test: Any) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = status_of(plane, namespace, name)
        return status if test(status) else None

    result: dict[str, Any] = wait_for(probe, timeout, f"{name}: {what}")
    return result


def wait_finished(plane: ControlPlane, namespace: str, name: str,
                  timeout: float = 180) -> dict[str, Any]:
    return wait_status(plane, namespace, name, "finished", timeout, lambda s: bool(
        condition_true(s, "Complete") or (condition_true(s, "Failed") and s.get("completionTime"))))


def children(plane: ControlPlane, namespace: str, name: str, kind: str) -> list[dict[str, Any]]:
    with plane.api_client() as api:
        core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
        method = core.list_namespaced_pod if kind == "pods" else batch.list_namespaced_job
        found = call(method, namespace, label_selector=f"parallelrun.io/step={name}")
    items: list[dict[str, Any]] = found["items"]
    return items


def roles(items: list[dict[str, Any]]) -> list[str]:
    return sorted(i["metadata"]["labels"]["parallelrun.io/role"] for i in items)


def running_pods(plane: ControlPlane, namespace: str, name: str) -> list[str]:
    return [p["metadata"]["name"] for p in children(plane, namespace, name, "pods")
            if p["status"].get("phase") in ("Pending", "Running")]


def output_lines(claim: Path, name: str) -> list[str]:
    return (claim / "out" / name / "parallel_run_step.txt").read_text().splitlines()


def calls(claim: Path, name: str) -> list[str]:
    folder = claim / "out" / name / "calls"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def pause(seconds: float) -> None:
    time.sleep(seconds)
