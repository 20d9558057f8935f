"""One step with nodeCount 500 on the test control plane: what the operator costs while 500
shard pods run, report progress and finish.

The shard pods are cheap stand-ins (500 runner processes do not fit on 2 cores): the step's
nodeSelector sends them to a Node of this benchmark's own, and a driver here does what a
kubelet and the runner would do, through the real API server and the operator's real
endpoint: binds each pod, reports it Running, posts the runner's progress reports with the
step's token (read from its Secret) on change at most every 3 s, and ends it Succeeded with
the runner's termination message. The plan and merge pods run for real on the node agent.

Printed: operator peak memory, reconcile passes and their total time, status writes (total
and the most in any 2 s), progress reports per second, and the time from the last shard's
end until the operator recorded the run as complete. Baseline in the same run: a plain
Indexed Job of the same size driven the same way, from its last pod's end to the Job
controller's Complete condition.

    python benchmarks/operator_large_step.py [--nodes 500]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_cluster import bench_cluster, running_operator
from kubernetes import client

from tests.cluster.controlplane import ControlPlane, wait_for
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.pod_sandbox import call
from tests.cluster.step_scenarios import create_step, stage_step, step_document

DRIVER_NODE = "bench-driver"
NODE_LABEL = {"parallelrun.io/bench-node": "driver"}
REPORT_EVERY = 3.0  # the runner's rate: on change, at most every 3 s (with jitter)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def register_driver_node(core: Any) -> None:
    call(core.create_node, {"metadata": {"name": DRIVER_NODE, "labels": NODE_LABEL}})
    capacity = {"cpu": "1000", "memory": "4000Gi", "pods": "2000"}
    call(core.patch_node_status, DRIVER_NODE, {"status": {
        "capacity": capacity, "allocatable": capacity,
        "conditions": [{"type": "Ready", "status": "True", "reason": "BenchDriver",
                        "lastHeartbeatTime": now(), "lastTransitionTime": now()}]}})


class Driver:
    """Plays kubelet and runner for the pods sent to DRIVER_NODE."""

    def __init__(self, plane: ControlPlane, operator_url: str) -> None:
        self.api = plane.api_client()
        self.core: Any = client.CoreV1Api(self.api)
        self.operator_url = operator_url
        self.started: set[str] = set()
        self.lock = threading.Lock()
        self.last_end = 0.0
        self.reports = 0
        self.report_failures = 0
        self.stop = threading.Event()

    def follow(self, namespace: str, selector: str) -> threading.Thread:
        thread = threading.Thread(target=self.loop, args=(namespace, selector), daemon=True)
        thread.start()
        return thread

    def loop(self, namespace: str, selector: str) -> None:
        while not self.stop.is_set():
            pods = call(self.core.list_namespaced_pod, namespace, label_selector=selector)
            for pod in pods["items"]:
                uid = pod["metadata"]["uid"]
                if uid not in self.started and not pod["spec"].get("nodeName"):
                    self.started.add(uid)
                    threading.Thread(target=self.run_pod, args=(pod,), daemon=True).start()
            time.sleep(0.5)

    def run_pod(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        shard = int(meta["annotations"]["batch.kubernetes.io/job-completion-index"])
        call(self.core.create_namespaced_pod_binding, name, namespace, {
            "metadata": {"name": name}, "target": {"kind": "Node", "name": DRIVER_NODE}})
        started = now()
        self.set_state(name, namespace, "Running", {"running": {"startedAt": started}})
        token, step = self.token_of(pod)
        mini_batches = random.randint(5, 8)  # about 15-25 s of work at 3 s per report
        for done in range(1, mini_batches + 1):
            time.sleep(REPORT_EVERY * random.uniform(0.7, 1.3))
            if token:
                self.post({**step, "report": {"shard": shard, "counts": counts(done)}}, token)
        message = json.dumps({"shard": shard, "status": "succeeded", "reason": "",
                              "message": "", "counts": counts(mini_batches),
                              "firstError": None})
        self.set_state(name, namespace, "Succeeded", {"terminated": {
            "exitCode": 0, "reason": "Completed", "message": message, "startedAt": started,
            "finishedAt": now()}})
        with self.lock:
            self.last_end = max(self.last_end, time.time())

    def token_of(self, pod: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """The progress token as the runner gets it: from the Secret its env points to."""
        env = {e["name"]: e for e in pod["spec"]["containers"][0].get("env") or []}
        if "PRS_PROGRESS_TOKEN" not in env:
            return "", {}
        ref = env["PRS_PROGRESS_TOKEN"]["valueFrom"]["secretKeyRef"]
        secret = call(self.core.read_namespaced_secret, ref["name"],
                      pod["metadata"]["namespace"])
        token = base64.b64decode(secret["data"][ref["key"]]).decode()
        step = {key: env[f"PRS_STEP_{key.upper()}"]["value"]
                for key in ("namespace", "name", "uid")}
        return token, step

    def post(self, payload: dict[str, Any], token: str) -> None:
        request = urllib.request.Request(
            f"{self.operator_url}/v1/progress", data=json.dumps(payload).encode(),
            method="POST", headers={"Authorization": f"Bearer {token}",
                                    "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10):
                pass
            with self.lock:
                self.reports += 1
        except OSError:
            with self.lock:
                self.report_failures += 1

    def set_state(self, name: str, namespace: str, phase: str, state: dict[str, Any]) -> None:
        running = phase == "Running"
        call(self.core.patch_namespaced_pod_status, name, namespace, {"status": {
            "phase": phase, "startTime": now(),
            "conditions": [{"type": "PodScheduled", "status": "True"},
                           {"type": "Ready", "status": str(running)}],
            "containerStatuses": [{"name": "runner", "image": "bench", "imageID": "",
                                   "ready": running, "started": running, "restartCount": 0,
                                   "state": state}]}})


def counts(done: int) -> dict[str, int]:
    return {"miniBatchesSucceeded": done, "miniBatchesFailed": 0, "itemsSucceeded": 2 * done,
            "itemsFailed": 0}


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


class WriteSampler:
    """The operator's status-write counter every second: the most writes in any 2 s."""

    def __init__(self, operator: OperatorProcess) -> None:
        self.operator, self.samples = operator, [0.0]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self) -> None:
        while not self.stop.wait(1.0):
            self.samples.append(metric(self.operator.metrics(),
                                       "parallelrunstep_status_writes_total"))

    def most_in_two_seconds(self) -> float:
        return max((b - a for a, b in zip(self.samples, self.samples[2:], strict=False)),
                   default=0.0)


def run_step(plane: ControlPlane, operator: OperatorProcess, nodes: int) -> dict[str, float]:
    namespace = "bench-step"
    stage_step(plane, namespace, 2 * nodes)
    driver = Driver(plane, operator.url)
    driver.follow(namespace, "parallelrun.io/role=run")
    sampler = WriteSampler(operator)
    custom: Any = client.CustomObjectsApi(driver.api)
    begin = time.time()
    create_step(plane, namespace, step_document(
        "big", nodeCount=nodes, miniBatchSize="2", podTemplate={"nodeSelector": NODE_LABEL}))

    def status() -> dict[str, Any]:
        body = call(custom.get_namespaced_custom_object, "parallelrun.io", "v1alpha1",
                    namespace, "parallelrunsteps", "big")
        return body.get("status") or {}

    wait_for(lambda: status().get("runCompletionTime"), 900, "the run recorded as complete")
    recorded = time.time()
    sampler.stop.set()
    driver.stop.set()
    text = operator.metrics()
    running = max(driver.last_end - begin, 1e-9)
    return {
        "rss_mib": operator.peak_rss_kib() / 1024,
        "passes": metric(text, "parallelrunstep_reconcile_duration_seconds_count"),
        "pass_seconds": metric(text, "parallelrunstep_reconcile_duration_seconds_sum"),
        "writes": metric(text, "parallelrunstep_status_writes_total"),
        "writes_2s": sampler.most_in_two_seconds(),
        "reports_per_s": driver.reports / running,
        "report_failures": driver.report_failures,
        "last_end_to_recorded": recorded - driver.last_end,
        "duration": running,
    }


def run_plain_job(plane: ControlPlane, nodes: int) -> float:
    """The same pods in a plain Indexed Job: last pod's end → the Job's Complete."""
    namespace = "bench-baseline"
    driver = Driver(plane, "")
    driver.follow(namespace, "batch.kubernetes.io/job-name=plain")
    batch: Any = client.BatchV1Api(driver.api)
    call(batch.create_namespaced_job, namespace, {"metadata": {"name": "plain"}, "spec": {
        "completionMode": "Indexed", "completions": nodes, "parallelism": nodes,
        "template": {"spec": {"restartPolicy": "Never", "nodeSelector": NODE_LABEL,
                              "containers": [{"name": "runner", "image": "bench",
                                              "command": ["true"]}]}}}})

    def complete() -> bool:
        job = call(batch.read_namespaced_job, "plain", namespace)
        return any(c["type"] == "Complete" and c["status"] == "True"
                   for c in (job.get("status") or {}).get("conditions") or [])

    wait_for(complete, 900, "the plain Job's Complete")
    done = time.time()
    driver.stop.set()
    return done - driver.last_end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    args = parser.parse_args()
    with bench_cluster("prs-large-step-", ("bench-step", "bench-baseline"),
                       register_driver_node) as (plane, work):
        baseline = run_plain_job(plane, args.nodes)
        with running_operator(plane, work) as operator:
            found = run_step(plane, operator, args.nodes)
    print(f"one step, nodeCount {args.nodes}; pods driven through the API server "
          f"(operator, control plane and driver share 2 CPUs)")
    print(f"  shards running, first to last end       {found['duration']:8.1f} s")
    print(f"  operator peak memory (VmHWM)            {found['rss_mib']:8.1f} MiB")
    print(f"  reconcile passes                        {found['passes']:8.0f}  "
          f"({found['pass_seconds']:.2f} s in all)")
    print(f"  status writes                           {found['writes']:8.0f}  "
          f"(most in any 2 s: {found['writes_2s']:.0f})")
    print(f"  progress reports accepted per second    {found['reports_per_s']:8.1f}  "
          f"({found['report_failures']:.0f} failed)")
    print(f"  last shard's end → run recorded          {found['last_end_to_recorded']:8.2f} s")
    print(f"  baseline: plain Indexed Job, last pod's end → Complete "
          f"{baseline:6.2f} s")


if __name__ == "__main__":
    main()
