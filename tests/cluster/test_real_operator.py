"""The operator as a real pod: the project's images (built with Docker as in the images tier,
then `docker save` | `ctr import` into every real node), the chart installed by the real helm
into a namespace that enforces the restricted Pod Security Standard, and steps whose plan,
run and merge Jobs run on the real nodes, each step in a restricted namespace of its own.

Beyond a step that completes, what only real nodes show, each read from the step's status
(what its user sees): an image no registry serves, a node selector no node has, a process
killed by the kernel for memory, live progress through the chart's Service by its DNS name,
and a shard pod deleted and a node drained mid-run."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .controlplane import wait_for
from .pod_sandbox import call
from .real_node import RealCluster, describe
from .real_release import RELEASE, RESTRICTED
from .step_scenarios import (
    ECHO_SCRIPT,
    children,
    condition_true,
    create_step,
    output_lines,
    status_of,
    step_document,
    wait_finished,
    wait_status,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]  # the first image build
PRS_UID = 10001
NAMES = [f"item{n:04d}.txt" for n in range(100)]
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"


def claim_volume(
    core: client.CoreV1Api, storage: client.StorageV1Api, namespace: str, path: Path,
    node: str | None,
) -> None:  # fmt: skip
    """Claim `data` of the namespace, bound to a PersistentVolume at PATH named vol-NAMESPACE.

    With NODE: a local volume on that node (its pods all run there). Without: a hostPath
    volume every node can mount. A local volume is bound to one node, so a shard evicted
    from it (drain) could not start anywhere else; the nodes here share the host's
    filesystem underneath their mount namespaces, so PATH is the same folder on both, as an
    NFS share would be. The pods still only use a `persistentVolumeClaim` volume, which the
    restricted Pod Security Standard allows (it forbids `hostPath` in pods, not in
    PersistentVolumes an admin creates)."""
    name = f"vol-{namespace}"
    storage_class: Any = {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer" if node else "Immediate",
    }  # fmt: skip
    storage.create_storage_class(storage_class)
    modes = ["ReadWriteOnce"] if node else ["ReadWriteMany"]
    source: dict[str, Any] = {"local": {"path": str(path)}, "nodeAffinity": {"required": {
        "nodeSelectorTerms": [{"matchExpressions": [{
            "key": "kubernetes.io/hostname", "operator": "In", "values": [node],
        }]}]}}} if node else {"hostPath": {"path": str(path), "type": "Directory"}}  # fmt: skip
    volume: Any = {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": modes,
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": name, **source},
    }  # fmt: skip
    core.create_persistent_volume(volume)
    claim: Any = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": modes, "storageClassName": name,
                 "resources": {"requests": {"storage": "1Gi"}}},
    }  # fmt: skip
    core.create_namespaced_persistent_volume_claim(namespace, claim)


@dataclass
class StepSpace:
    """A restricted namespace holding claim `data` (input files in/item0000.txt, ...) and the
    code ConfigMap `code`; DATA is the claim's folder on the host."""

    cluster: RealCluster
    namespace: str
    data: Path

    def create(self, document: dict[str, Any]) -> None:
        create_step(self.cluster.plane, self.namespace, document)

    def status(self, name: str) -> dict[str, Any]:
        return status_of(self.cluster.plane, self.namespace, name)

    def explain(self, name: str) -> str:
        status = json.dumps(self.status(name), indent=1)
        return f"status of {name}: {status}\n{describe(self.cluster, self.namespace)}"

    def wait(self, name: str, what: str, timeout: float,
             test: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
        try:
            return wait_status(self.cluster.plane, self.namespace, name, what, timeout, test)
        except AssertionError as error:
            pytest.fail(f"{error}\n{self.explain(name)}", pytrace=False)

    def finished(self, name: str, timeout: float = 180) -> dict[str, Any]:
        try:
            return wait_finished(self.cluster.plane, self.namespace, name, timeout=timeout)
        except AssertionError as error:
            pytest.fail(f"{error}\n{self.explain(name)}", pytrace=False)

    def pods(self, name: str, role: str) -> list[dict[str, Any]]:
        return [p for p in children(self.cluster.plane, self.namespace, name, "pods")
                if p["metadata"]["labels"]["parallelrun.io/role"] == role]

    def running_pods(self, name: str, role: str, count: int,
                     timeout: float) -> list[dict[str, Any]]:
        """COUNT pods of ROLE Running (and not being deleted), once they are."""
        def running() -> list[dict[str, Any]] | None:
            pods = [p for p in self.pods(name, role) if p["status"].get("phase") == "Running"
                    and not p["metadata"].get("deletionTimestamp")]
            return pods if len(pods) == count else None

        try:
            return wait_for(running, timeout, f"{count} {role} pods of {name} running")
        except AssertionError as error:
            pytest.fail(f"{error}\n{self.explain(name)}", pytrace=False)


@contextlib.contextmanager
def step_space(cluster: RealCluster, folder: Path, files: int, script: str = ECHO_SCRIPT,
               shared: bool = False) -> Iterator[StepSpace]:
    """FILES input files in FOLDER, owned by 10001 as an admin would prepare a claim, behind a
    local volume on the first node, or a volume every node reaches (SHARED)."""
    (folder / "in").mkdir()
    for number in range(files):
        (folder / "in" / NAMES[number]).write_text(f"{number}\n")
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, PRS_UID, PRS_UID)
    plane = cluster.plane
    namespace = f"r-{uuid.uuid4().hex[:10]}"
    with plane.api_client() as api:
        core, storage = client.CoreV1Api(api), client.StorageV1Api(api)
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels=RESTRICTED))
        )
        try:
            plane.wait_for_service_account(namespace)
            claim_volume(core, storage, namespace, folder,
                         None if shared else cluster.nodes[0].name)  # fmt: skip
            call(core.create_namespaced_config_map, namespace,
                 {"metadata": {"name": "code"}, "data": {"score.py": script}})  # fmt: skip
            yield StepSpace(cluster, namespace, folder)
        finally:
            core.delete_namespace(namespace, propagation_policy="Background")
            for delete in (core.delete_persistent_volume, storage.delete_storage_class):
                with contextlib.suppress(ApiException):
                    delete(f"vol-{namespace}")


def failed_reason(status: dict[str, Any]) -> str:
    return str(next(c for c in status["conditions"] if c["type"] == "Failed")["reason"])


def test_helm_installed_operator_runs_a_step_on_real_nodes(
    real_cluster: RealCluster, operator_release: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The step, its pods and the operator in restricted namespaces; the output exactly the
    input's files, in order, written as 10001."""
    node = real_cluster.nodes[0].name
    with step_space(real_cluster, tmp_path_factory.mktemp("step-data"), 6) as space:
        space.create(step_document("echo"))
        status = space.finished("echo", timeout=300)
        assert status.get("phase") == "Succeeded", space.explain("echo")
        assert condition_true(status, "Complete"), status
        assert status["miniBatches"] == {"total": 6, "succeeded": 6, "failed": 0, "pending": 0}
        assert status["items"] == {"total": 6, "succeeded": 6, "failed": 0}
        assert status["output"]["file"] == "parallel_run_step.txt", status["output"]
        pods = children(real_cluster.plane, space.namespace, "echo", "pods")
        assert {p["spec"]["nodeName"] for p in pods} == {node}  # the local volume's node
        assert {p["status"]["phase"] for p in pods} == {"Succeeded"}
        assert sorted(p["metadata"]["labels"]["parallelrun.io/role"] for p in pods) == [
            "merge", "plan", "run", "run"]
        output = space.data / "out" / "echo" / "parallel_run_step.txt"
        assert output_lines(space.data, "echo") == NAMES[:6]
        assert output.stat().st_uid == PRS_UID
        with real_cluster.plane.api_client() as api:
            operator_pods = call(client.CoreV1Api(api).list_namespaced_pod, operator_release)
        assert [p["status"]["phase"] for p in operator_pods["items"]] == ["Running"]



def test_an_image_no_registry_serves_ends_the_step_as_pods_not_starting(
    real_cluster: RealCluster, operator_release: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """spec.image names an image that is in no node's containerd: kubelet pulls it (the
    default policy for a tag other than latest is IfNotPresent) and, with no registry in
    reach, the plan pod waits in ErrImagePull / ImagePullBackOff. The step says so, then
    gives up after startupTimeout."""
    with step_space(real_cluster, tmp_path_factory.mktemp("missing-image"), 2) as space:
        space.create(step_document("missing", image="parallelrunstep/none:missing",
                                   startupTimeout=20))
        waiting = space.wait("missing", "the pull failure in the message", 60,
                             lambda s: any(word in s.get("message", "") for word in PULL_FAILED))
        assert waiting["phase"] == "Planning", waiting
        assert "parallelrunstep/none:missing" in waiting["message"], waiting["message"]
        status = space.finished("missing", timeout=120)
        assert status["phase"] == "Failed" and failed_reason(status) == "PodsNotStarting", status
        assert status["message"].startswith("plan: pod missing-plan-"), status["message"]
        assert any(word in status["message"] for word in PULL_FAILED), status["message"]
        assert "startupTimeout=20" in status["message"]
        wait_for(lambda: not space.pods("missing", "plan"), 60, "the plan pod deleted")


PULL_FAILED = ("ErrImagePull", "ImagePullBackOff")


def test_shards_no_node_fits_are_listed_as_unschedulable_then_end_the_step(
    real_cluster: RealCluster, operator_release: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A node selector no node has (a GPU pool that is not there): the real kube-scheduler
    leaves the shard pods Pending, Unschedulable; status.shards.table lists them with its
    message, then the step fails with PodsNotStarting after startupTimeout."""
    with step_space(real_cluster, tmp_path_factory.mktemp("no-node"), 2) as space:
        space.create(step_document("stuck", startupTimeout=20,
                                   podTemplate={"nodeSelector": {"pool": "gpu-a100"}}))
        listed = space.wait("stuck", "the shard table", 90,
                            lambda s: len((s.get("shards") or {}).get("table") or []) == 2
                            and all(r["reason"] == "Unschedulable"
                                    for r in s["shards"]["table"]))
        rows = listed["shards"]["table"]
        assert [(r["shard"], r["phase"], r["reason"], r["restarts"]) for r in rows] == [
            (0, "Pending", "Unschedulable", 0), (1, "Pending", "Unschedulable", 0)]
        # The scheduler's own words: both nodes considered, neither has the label.
        assert rows[0]["message"].startswith("0/2 nodes are available"), rows[0]
        assert "didn't match Pod's node affinity/selector" in rows[0]["message"], rows[0]
        assert listed["phase"] == "Running" and "Unschedulable" in listed["message"], listed
        status = space.finished("stuck", timeout=120)
        assert status["phase"] == "Failed" and failed_reason(status) == "PodsNotStarting", status
        assert status["message"].startswith("run: pod stuck-run-"), status["message"]
        assert "startupTimeout=20" in status["message"]
        wait_for(lambda: not space.pods("stuck", "run"), 60, "the run pods deleted")


# run() holds 512 MiB, every page written: far over the step's 64Mi memory limit. The kernel
# kills the largest process of the container, the worker running run(), not the shard.
HOG_SCRIPT = """
import os

def run(mini_batch, context):
    hog = b"x" * (512 << 20)
    return [os.path.basename(p) for p in mini_batch] + [str(len(hog))]
"""


def test_a_worker_over_the_memory_limit_fails_the_step_as_oomkilled(
    real_cluster: RealCluster, operator_release: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """cgroup v1 memory limit of the shard containers: the kernel's OOM killer ends the worker
    in run(); the shard lives on and ends with exit code 0, its container reason OOMKilled.
    Every mini-batch fails, and the step's message says why in the user's terms."""
    with step_space(real_cluster, tmp_path_factory.mktemp("hog"), 2, HOG_SCRIPT) as space:
        space.create(step_document("hog", resources={"limits": {"memory": "64Mi"}}))
        status = space.finished("hog", timeout=180)
        assert status["phase"] == "Failed", space.explain("hog")
        assert failed_reason(status) == "AllMiniBatchesFailed", status
        assert status["message"].startswith("OOMKilled: run pod hog-run-"), status["message"]
        assert "(resources.limits.memory=64Mi)" in status["message"]
        # ... and the runner's first error, from inside the pod: the worker, the limit.
        assert ("first error: OOMKilled: worker process was killed by signal 9 (SIGKILL): the "
                "kernel's OOM killer ended it, the container went over its memory limit of "
                "64Mi") in status["message"]
        assert status["miniBatches"] == {"total": 2, "succeeded": 0, "failed": 2, "pending": 0}
        assert status["shards"]["active"] == 0, status["shards"]
        shards = space.pods("hog", "run")
        ended = [p["status"]["containerStatuses"][0]["state"]["terminated"] for p in shards]
        assert [(t["reason"], t["exitCode"]) for t in ended] == [("OOMKilled", 0)] * 2, ended


def run_pod_env(pod: dict[str, Any], name: str) -> Any:
    return next(e for e in pod["spec"]["containers"][0]["env"] if e["name"] == name)


def test_live_progress_reaches_the_operator_through_its_service_by_dns_name(
    real_cluster: RealCluster, operator_release: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The shards post their counts to the chart's PRS_PROGRESS_URL, a Service DNS name that
    CoreDNS resolves and kube-proxy sends to the operator pod (on either node): the step's
    count of succeeded mini-batches grows while both shards still run, which only those
    reports can tell (a termination message exists only once a pod has ended)."""
    with step_space(real_cluster, tmp_path_factory.mktemp("live"), 12) as space:
        space.create(step_document("live", env={"SCENARIO_DELAY": "1.2"}))

        def counted_while_running() -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
            status = space.status("live")
            succeeded = (status.get("miniBatches") or {}).get("succeeded", 0)
            if not 0 < succeeded < 12:
                return None
            shards = space.pods("live", "run")  # read after the status
            running = [p for p in shards if p["status"].get("phase") == "Running"]
            return (status, running) if len(shards) == len(running) == 2 else None

        try:
            live, shards = wait_for(counted_while_running, 90, "counts while the shards run")
        except AssertionError as error:
            pytest.fail(f"{error}\n{space.explain('live')}", pytrace=False)
        assert live["phase"] == "Running" and live["progress"].endswith("/12"), live
        url = f"http://{RELEASE}-parallelrun-operator.{operator_release}.svc:8080/v1/progress"
        assert run_pod_env(shards[0], "PRS_PROGRESS_URL") == {"name": "PRS_PROGRESS_URL",
                                                              "value": url}
        status = space.finished("live", timeout=120)
        assert condition_true(status, "Complete"), space.explain("live")
        assert status["miniBatches"]["succeeded"] == 12
        assert output_lines(space.data, "live") == NAMES[:12]
        # `kubectl logs` (API server -> kubelet -> containerd's log) of the shards: the
        # runner's progress lines, one JSON object every 0.25 s, growing, the last one final.
        finals = 0
        for shard in shards:
            logs = real_cluster.plane.kubectl(
                "-n", space.namespace, "logs", shard["metadata"]["name"]).stdout
            reports = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
            index = int(shard["metadata"]["annotations"][COMPLETION_INDEX])
            assert reports and all(r["shard"] == index for r in reports), logs
            done = [r["counts"]["miniBatchesSucceeded"] for r in reports]
            assert done == sorted(done) and done[0] < done[-1], done
            assert [r["final"] for r in reports].count(True) == 1 and reports[-1]["final"], logs
            finals += done[-1]
        assert finals == 12


def test_a_deleted_shard_pod_and_a_drained_node_leave_the_output_exactly_once(
    real_cluster: RealCluster, operator_release: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Mid-run, one shard pod is deleted and the node running the other is drained
    (`kubectl drain`: cordon, then the Eviction API for every pod on it, the operator's and
    CoreDNS's included when they are there). The Job makes new pods, on the other node for
    the evicted shard (the data is on a volume both nodes reach); committed mini-batches
    are kept, and the output lists every file once, in order."""
    plane = real_cluster.plane
    with step_space(real_cluster, tmp_path_factory.mktemp("drain"), 40, shared=True) as space:
        space.create(step_document("moved", env={"SCENARIO_DELAY": "0.5"}))
        space.wait("moved", "live progress", 120,
                   lambda s: 4 <= (s.get("miniBatches") or {}).get("succeeded", 0) < 30)
        # A pod may start seconds after the other: its kubelet retries a volume whose claim
        # the node authorizer did not yet link to the pod ("no relationship found").
        deleted, evicted = space.running_pods("moved", "run", 2, timeout=60)
        assert space.status("moved")["miniBatches"]["succeeded"] < 40, space.explain("moved")
        drained = evicted["spec"]["nodeName"]
        with plane.api_client() as api:
            call(client.CoreV1Api(api).delete_namespaced_pod, deleted["metadata"]["name"],
                 space.namespace)
        try:
            drain = plane.kubectl("drain", drained, "--ignore-daemonsets",
                                  "--delete-emptydir-data", "--timeout=120s", check=False,
                                  timeout=150)  # fmt: skip
            assert drain.returncode == 0, drain.stdout + drain.stderr
            assert f"evicting pod {space.namespace}/{evicted['metadata']['name']}" in (
                drain.stdout + drain.stderr)
            status = space.finished("moved", timeout=240)
        finally:
            plane.kubectl("uncordon", drained, check=False)
        assert condition_true(status, "Complete"), space.explain("moved")
        assert status["miniBatches"] == {"total": 40, "succeeded": 40, "failed": 0,
                                         "pending": 0}
        assert status["items"] == {"total": 40, "succeeded": 40, "failed": 0}
        assert (status["shards"]["active"], status["shards"]["succeeded"]) == (0, 2), status
        assert output_lines(space.data, "moved") == NAMES[:40]
        # The evicted shard ended on the node that was not drained, from its new pod.
        index = evicted["metadata"]["annotations"][COMPLETION_INDEX]
        after = [p for p in space.pods("moved", "run")
                 if p["metadata"]["annotations"][COMPLETION_INDEX] == index]
        assert [(p["spec"]["nodeName"] != drained, p["status"]["phase"]) for p in after] == [
            (True, "Succeeded")], after
