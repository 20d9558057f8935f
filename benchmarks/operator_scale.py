"""Operator scale: N steps applied at once on the test control plane (etcd, kube-apiserver,
kube-controller-manager built from Kubernetes' modules, pods run by the node agent).

Prints, per step, the latency from the step's creation until the operator created its plan
Job and its Indexed Job (which needs the plan pod to have run), and the operator's peak
memory. Baseline in the same run: the same number of plain Jobs created directly by a client,
creation to existence: what the API server alone costs.

    python benchmarks/operator_scale.py [--steps 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_cluster import bench_cluster, running_operator
from kubernetes import client

from tests.cluster.controlplane import ControlPlane
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.pod_sandbox import call
from tests.cluster.step_scenarios import create_step, stage_step, step_document


def parse_time(text: str) -> float:
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone


class JobWatch:
    """First-seen wall time of every Job in a namespace (polling the list is enough at 0.1 s)."""

    def __init__(self, plane: ControlPlane, namespace: str) -> None:
        self.plane, self.namespace = plane, namespace
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self) -> None:
        with self.plane.api_client() as api:
            batch = client.BatchV1Api(api)
            while not self.stop.is_set():
                for job in call(batch.list_namespaced_job, self.namespace)["items"]:
                    self.seen.setdefault(job["metadata"]["name"], time.time())
                time.sleep(0.1)


def baseline(plane: ControlPlane, namespace: str, count: int) -> list[float]:
    """Plain Jobs straight from a client: creation call to seeing it listed."""
    watch = JobWatch(plane, namespace)
    started: dict[str, float] = {}
    with plane.api_client() as api:
        batch = client.BatchV1Api(api)
        for number in range(count):
            name = f"plain-{number}"
            started[name] = time.time()
            call(batch.create_namespaced_job, namespace, {
                "metadata": {"name": name}, "spec": {"suspend": True, "template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "none", "command": ["true"]}]}}}})
    deadline = time.time() + 60
    while len([n for n in started if n in watch.seen]) < count and time.time() < deadline:
        time.sleep(0.1)
    watch.stop.set()
    return [watch.seen[n] - started[n] for n in started]


def run_steps(plane: ControlPlane, operator: OperatorProcess, namespace: str,
              count: int) -> tuple[list[float], list[float], float]:
    stage_step(plane, namespace, 2)
    watch = JobWatch(plane, namespace)
    created: dict[str, float] = {}

    def create(number: int) -> None:
        name = f"scale-{number:03d}"
        created[name] = time.time()
        create_step(plane, namespace, step_document(name, nodeCount=1))

    begin = time.time()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(count)))
    deadline = time.time() + 900
    while time.time() < deadline and not all(f"{n}-run" in watch.seen for n in created):
        time.sleep(0.5)
    watch.stop.set()
    missing = [n for n in created if f"{n}-run" not in watch.seen]
    if missing:
        raise SystemExit(f"{len(missing)} steps never got their Indexed Job: {missing[:5]}")
    to_plan = [watch.seen[f"{n}-plan"] - created[n] for n in created]
    to_run = [watch.seen[f"{n}-run"] - created[n] for n in created]
    return to_plan, to_run, max(watch.seen.values()) - begin


def describe(label: str, values: list[float]) -> str:
    return (f"{label:<44} median {statistics.median(values):7.2f} s   "
            f"max {max(values):7.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    namespaces = ("bench-baseline", "bench-steps")
    with bench_cluster("prs-operator-bench-", namespaces) as (plane, work), \
            running_operator(plane, work) as operator:
        plain = baseline(plane, "bench-baseline", args.steps)
        to_plan, to_run, total = run_steps(plane, operator, "bench-steps", args.steps)
        rss = operator.peak_rss_kib() / 1024
    print(f"{args.steps} steps applied at once (operator and pods share 2 CPUs)")
    print(describe("baseline: plain Job, create → listed", plain))
    print(describe("operator: step created → plan Job", to_plan))
    print(describe("operator: step created → Indexed Job (after plan)", to_run))
    print(f"{'every step has its Indexed Job after':<44} {total:7.2f} s")
    print(f"{'operator peak memory (VmHWM)':<44} {rss:7.1f} MiB")


if __name__ == "__main__":
    main()
