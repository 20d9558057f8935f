"""Steps whose input and output are on an S3 server, run by the helm-installed operator on
the real nodes: the pods get the credentials from a Secret through the step's
`podTemplate.envFrom`, reach the server by the hub address (a relay to the SeaweedFS of the
storage tier), and the output equals what `prs run` writes from the same objects."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from prs_runner.storage.filesystem import Storage
from tests.storage_servers import StorageServer, start_server

from .controlplane import free_port
from .pod_sandbox import call
from .real_node import RealCluster, describe
from .real_release import RESTRICTED
from .step_scenarios import condition_true, create_step, status_of, step_document, wait_finished

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]  # the first image build

SCRIPT = '''
import os
def run(mini_batch):
    return [f"{os.path.basename(p)} {open(p).read().strip()}" for p in mini_batch]
'''


@pytest.fixture(scope="module")
def s3_for_pods(
    real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[StorageServer, dict[str, str]]]:
    """The S3 server on the host's loopback, and the environment pods use to reach it."""
    server = start_server("s3", tmp_path_factory.mktemp("s3-for-pods"))
    port = free_port()
    relay = f"s3-relay-{port}"
    real_cluster.processes.launch(relay, [
        "socat", f"TCP-LISTEN:{port},bind={real_cluster.network.host_ip},fork,reuseaddr",
        f"TCP:{server.host}",
    ])  # fmt: skip
    pod_env = {**server.env, "AWS_ENDPOINT_URL": f"http://{real_cluster.network.host_ip}:{port}"}
    try:
        yield server, pod_env
    finally:
        real_cluster.processes.stop(relay)
        server.close()


def put_inputs(server: StorageServer, prefix: str, count: int) -> None:
    source = Storage(server.uri(f"{prefix}/in"))
    for number in range(count):
        source.write_atomic(f"part{number % 2}/item{number:04d}.txt", f"{number}\n".encode())


def test_a_step_on_s3_runs_on_real_nodes_and_equals_prs_run(
    real_cluster: RealCluster, operator_release: str,
    s3_for_pods: tuple[StorageServer, dict[str, str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    server, pod_env = s3_for_pods
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    prefix = f"r-{uuid.uuid4().hex[:8]}"
    put_inputs(server, prefix, 24)
    namespace = f"r-{uuid.uuid4().hex[:10]}"
    plane = real_cluster.plane
    with plane.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels=RESTRICTED)))
        try:
            plane.wait_for_service_account(namespace)
            call(core.create_namespaced_config_map, namespace,
                 {"metadata": {"name": "code"}, "data": {"score.py": SCRIPT}})
            call(core.create_namespaced_secret, namespace,
                 {"metadata": {"name": "s3-credentials"}, "stringData": pod_env})
            document = step_document(
                "on-s3", podTemplate={"envFrom": [{"secretRef": {"name": "s3-credentials"}}]},
                miniBatchSize="5")
            document["spec"]["input"] = {"type": "files", "uri": server.uri(f"{prefix}/in")}
            document["spec"]["output"] = {"uri": server.uri(f"{prefix}/out")}
            create_step(plane, namespace, document)
            try:
                status = wait_finished(plane, namespace, "on-s3", timeout=300)
            except AssertionError as error:
                pytest.fail(f"{error}\n{status_of(plane, namespace, 'on-s3')}\n"
                            f"{describe(real_cluster, namespace)}", pytrace=False)
            assert condition_true(status, "Complete"), status
            assert status["items"] == {"total": 24, "succeeded": 24, "failed": 0}
            secret_text = pod_env["AWS_SECRET_ACCESS_KEY"]
            assert secret_text not in str(status)  # no secret in the status
        finally:
            core.delete_namespace(namespace, propagation_policy="Background")
    cluster_output = Storage(server.uri(f"{prefix}/out")).read_bytes("parallel_run_step.txt")
    local = local_run(tmp_path, server, prefix)
    assert cluster_output == local
    assert cluster_output.decode().splitlines()[:2] == ["item0000.txt 0", "item0002.txt 2"]


def local_run(tmp_path: Path, server: StorageServer, prefix: str) -> bytes:
    """`prs run` of the same step from the same objects, into another prefix."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text(SCRIPT)
    step = tmp_path / "step.yaml"
    step.write_text(f"""
apiVersion: parallelrun.io/v1alpha1
kind: ParallelRunStep
metadata: {{name: on-s3}}
spec:
  code: {{entryScript: score.py, sourceDirectory: ./src}}
  input: {{type: files, uri: "{server.uri(f'{prefix}/in')}"}}
  output: {{uri: "{server.uri(f'{prefix}/local-out')}"}}
  miniBatchSize: "5"
  nodeCount: 2
""")
    done = subprocess.run([sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(step)],
                          env={**os.environ, **server.env}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return Storage(server.uri(f"{prefix}/local-out")).read_bytes("parallel_run_step.txt")
