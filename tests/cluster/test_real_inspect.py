"""`prs status` and `prs logs` against real nodes: the pods of a step's Indexed Job run on real
kubelets, so the API server fetches their logs from the kubelets as it does for kubectl.

No operator runs here (that needs the project's images, built with Docker): the test plays
its part with the API, as the operator would: the step, its Indexed Job (owned by the step,
labelled with its name and role), the status fields `prs status` shows. The pods print
what a shard prints (JSON progress lines between plain lines) and end with a termination
message holding their counts, as the runner does. Shard 1's first pod fails, so the Job
retries the index with a new pod: `prs logs -f` must follow it too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from .controlplane import wait_for
from .crd_install import GROUP, PLURAL, VERSION, install_crd
from .pod_sandbox import call
from .real_node import BASE_IMAGE, RealCluster, describe
from .step_scenarios import step_document

pytestmark = pytest.mark.cluster
NAME = "inspect"
SLEEP_SECONDS = 25  # how long each shard stays Running with 2 mini-batches reported

SHARD_SCRIPT = """
import json, os, sys, time
index = int(os.environ["JOB_COMPLETION_INDEX"])
failures = int(os.environ.get("FAILURES") or 0)
def report(done, final=False):
    print(json.dumps({"shard": index, "status": "running", "final": final, "counts":
                      {"miniBatchesSucceeded": done, "miniBatchesFailed": 0}}), flush=True)
print(f"shard {index} starting, try {failures + 1}", flush=True)
if index == 1 and failures == 0:
    time.sleep(2)
    print("shard 1 gives up on its first try", flush=True)
    sys.exit(1)
report(2)
sys.stdout.buffer.write(b"bytes \\xff\\xfe that are not UTF-8\\n")  # a script may print anything
sys.stdout.flush()
print(f"shard {index} working", flush=True)
time.sleep(float(os.environ["SLEEP"]))
report(3, final=True)
with open("/dev/termination-log", "w") as out:
    json.dump({"shard": index, "status": "succeeded", "message": f"shard {index} done",
               "counts": {"miniBatchesSucceeded": 3, "miniBatchesFailed": 0}}, out)
"""


def prs(*args: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    return subprocess.run([sys.executable, "-m", "prs_runner.commands.prs_cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def start_prs(*args: str, kubeconfig: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    return subprocess.Popen([sys.executable, "-m", "prs_runner.commands.prs_cli", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def security() -> dict[str, Any]:
    return {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}}


def shard_job(step: dict[str, Any]) -> dict[str, Any]:
    labels = {"parallelrun.io/step": NAME, "parallelrun.io/role": "run"}
    failures = "metadata.annotations['batch.kubernetes.io/job-index-failure-count']"
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": f"{NAME}-run", "labels": labels, "ownerReferences": [{
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "ParallelRunStep", "name": NAME,
            "uid": step["metadata"]["uid"], "controller": True}]},
        "spec": {
            "completionMode": "Indexed", "completions": 2, "parallelism": 2,
            "backoffLimitPerIndex": 1,
            "template": {"metadata": {"labels": labels}, "spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 2,
                "securityContext": {"runAsUser": 10001, "runAsGroup": 10001,
                                    "runAsNonRoot": True,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "runner", "image": BASE_IMAGE, "imagePullPolicy": "Never",
                    "command": ["python3", "-c", SHARD_SCRIPT],
                    "env": [{"name": "SLEEP", "value": str(SLEEP_SECONDS)},
                            {"name": "FAILURES", "valueFrom": {"fieldRef": {
                                "fieldPath": failures}}}],
                    "securityContext": security()}]}}},
    }  # fmt: skip


def foreign_pod() -> dict[str, Any]:
    """Labelled as the step's shard 0 but made by no Job of the step: never shown."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{NAME}-impostor", "labels": {
            "parallelrun.io/step": NAME, "parallelrun.io/role": "run"},
            "annotations": {"batch.kubernetes.io/job-completion-index": "0"}},
        "spec": {"restartPolicy": "Never",
                 "securityContext": {"runAsUser": 10001, "runAsGroup": 10001,
                                     "runAsNonRoot": True,
                                     "seccompProfile": {"type": "RuntimeDefault"}},
                 "containers": [{"name": "runner", "image": BASE_IMAGE,
                                 "imagePullPolicy": "Never",
                                 "command": ["python3", "-c", "print('impostor')"],
                                 "securityContext": security()}]},
    }  # fmt: skip


@pytest.fixture
def space(real_cluster: RealCluster, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A namespace enforcing the restricted standard, and a kubeconfig whose context
    `inspect` defaults to it (the current context stays the admin's, namespace unset)."""
    namespace = f"i-{uuid.uuid4().hex[:10]}"
    with real_cluster.plane.api_client() as api:
        install_crd(api)
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
            name=namespace, labels={"pod-security.kubernetes.io/enforce": "restricted"})))
        real_cluster.plane.wait_for_service_account(namespace)
        config = yaml.safe_load(Path(real_cluster.plane.kubeconfig).read_text())
        current = next(c for c in config["contexts"]
                       if c["name"] == config["current-context"])
        config["contexts"].append({"name": "inspect", "context": {
            **current["context"], "namespace": namespace}})
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        yield namespace, kubeconfig
        core.delete_namespace(namespace, propagation_policy="Background")


def status_rows(kubeconfig: Path, *args: str) -> dict[str, Any]:
    shown = prs("status", NAME, "--context", "inspect", "-o", "json", *args,
                kubeconfig=kubeconfig)
    assert shown.returncode == 0, shown.stderr
    parsed: dict[str, Any] = json.loads(shown.stdout)
    return parsed


def by_shard(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["shard"]: row for row in view["pods"]}


def test_status_and_logs_of_a_steps_pods_on_real_nodes(
    real_cluster: RealCluster, space: tuple[str, Path]
) -> None:
    namespace, kubeconfig = space
    plane = real_cluster.plane
    node_names = {node.name for node in real_cluster.nodes}
    with plane.api_client() as api:
        custom = client.CustomObjectsApi(api)
        step = call(custom.create_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
                    step_document(NAME))
        call(custom.patch_namespaced_custom_object_status, GROUP, VERSION, namespace, PLURAL,
             NAME, {"status": {"phase": "Running", "progress": "0/6", "eta": "",
                               "message": "0/6 mini-batches done"}})
        core = client.CoreV1Api(api)
        call(core.create_namespaced_pod, namespace, foreign_pod())
        following = start_prs("logs", NAME, "--context", "inspect", "-f",
                              kubeconfig=kubeconfig)  # before any pod: it waits for them
        call(client.BatchV1Api(api).create_namespaced_job, namespace, shard_job(step))

        def both_working() -> dict[str, Any] | None:
            view = status_rows(kubeconfig)
            rows = by_shard(view)
            return view if {row.get("done") for row in rows.values()} == {2} and len(
                rows) == 2 else None

        try:
            running = wait_for(both_working, 90, "both shards Running with 2 mini-batches")
        except AssertionError:
            following.kill()
            pytest.fail(describe(real_cluster, namespace), pytrace=False)
        rows = by_shard(running)
        assert running["phase"] == "Running" and running["message"] == "0/6 mini-batches done"
        for shard in ("0", "1"):  # counts and last words from the log, read via the kubelet
            assert rows[shard]["phase"] == "Running" and rows[shard]["node"] in node_names
            assert rows[shard]["message"] == f"shard {shard} working"
            assert rows[shard]["pod"].startswith(f"{NAME}-run-{shard}-")
        assert rows["1"]["restarts"] == 1 and rows["0"]["restarts"] == 0  # shard 1's retry

        text = prs("status", NAME, "--context", "inspect", kubeconfig=kubeconfig)
        assert text.returncode == 0, text.stderr
        lines = text.stdout.splitlines()
        assert lines[0] == f"{NAME} ({namespace}): Running, 0/6 mini-batches"
        assert lines[3].split() == ["SHARD", "POD", "NODE", "PHASE", "REASON", "RESTARTS",
                                    "DONE", "MESSAGE"]

        # Ctrl-C stops a follow at once, in one line.
        interrupted = start_prs("logs", NAME, "--context", "inspect", "-f", "--shard", "0",
                                kubeconfig=kubeconfig)
        first = interrupted.stdout.readline() if interrupted.stdout else ""
        interrupted.send_signal(signal.SIGINT)
        _, err = interrupted.communicate(timeout=20)
        assert first.startswith("[shard-0] shard 0 starting"), first
        assert interrupted.returncode == 130
        assert err.strip() == "stopped following the logs; the step goes on in the cluster"

        def job_complete() -> bool:
            job = call(client.BatchV1Api(api).read_namespaced_job, f"{NAME}-run", namespace)
            return any(c["type"] == "Complete" and c["status"] == "True"
                       for c in (job.get("status") or {}).get("conditions") or [])

        wait_for(job_complete, SLEEP_SECONDS + 60, "the shards' Job to complete")
        # What the operator writes then: no more shard pods will come, the follow may end.
        call(custom.patch_namespaced_custom_object_status, GROUP, VERSION, namespace, PLURAL,
             NAME, {"status": {"phase": "Merging", "progress": "6/6",
                               "runCompletionTime": "2027-01-01T00:00:00Z"}})
        out, err = following.communicate(timeout=30)
    assert following.returncode == 0, err

    followed = out.splitlines()
    assert "impostor" not in out
    for index in (0, 1):
        assert followed.count(f"[shard-{index}] shard {index} working") == 1, out
        assert [line for line in followed if line.startswith(f"[shard-{index}] {{")][-1:] == [
            f'[shard-{index}] {{"shard": {index}, "status": "running", "final": true, '
            f'"counts": {{"miniBatchesSucceeded": 3, "miniBatchesFailed": 0}}}}'], out
    assert "[shard-1] shard 1 gives up on its first try" in followed, out  # the first pod
    retried = [line for line in followed if line.startswith("[shard-1] (retried: pod ")]
    assert len(retried) == 1 and followed.index(retried[0]) < followed.index(
        "[shard-1] shard 1 starting, try 2"), out

    done = by_shard(status_rows(kubeconfig))
    assert {shard: (row["phase"], row["done"], row["message"], row["restarts"])
            for shard, row in done.items()} == {
        "0": ("Succeeded", 3, "shard 0 done", 0), "1": ("Succeeded", 3, "shard 1 done", 1)}

    # Without -f: each shard's newest pod, interleaved in time order.
    logs = prs("logs", NAME, "--context", "inspect", kubeconfig=kubeconfig)
    assert logs.returncode == 0, logs.stderr
    shown = logs.stdout.splitlines()
    assert "[shard-1] shard 1 gives up on its first try" not in shown  # the older pod
    assert shown.index("[shard-0] shard 0 starting, try 1") < shown.index(
        "[shard-0] shard 0 working")
    assert {line.split("]")[0] for line in shown} == {"[shard-0", "[shard-1"}
    assert len(shown) == 2 * 5, logs.stdout  # starting, report, bytes, working, final report
    assert "[shard-0] bytes \ufffd\ufffd that are not UTF-8" in shown, logs.stdout

    one = prs("logs", NAME, "--context", "inspect", "--shard", "1", "--timestamps",
              kubeconfig=kubeconfig)
    assert one.returncode == 0, one.stderr
    assert next(line.split(" ", 2)[2] for line in one.stdout.splitlines()) == (
        "shard 1 starting, try 2")
    assert all(line.startswith("[shard-1] 20") for line in one.stdout.splitlines())

    # The namespace comes from the chosen context: the current one's is "default".
    missing = prs("status", NAME, kubeconfig=kubeconfig)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"prs status: no ParallelRunStep '{NAME}' in namespace 'default' "
        "(kubectl get prs -n default)")
    assert prs("status", NAME, "-n", namespace, kubeconfig=kubeconfig).returncode == 0
