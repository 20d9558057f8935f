"""Steps whose input and output are on an S3 server, run by the helm-installed operator on
the real nodes: the pods get the credentials from a Secret through the step's
`podTemplate.envFrom`, reach the server by the hub address (a relay to the SeaweedFS of the
storage tier), and the output equals what `prs run` writes from the same objects."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from kubernetes import client

from prs_runner.storage.filesystem import Storage
from tests.images.docker_engine import DockerEngine, DockerError
from tests.storage_servers import StorageServer, start_server

from .controlplane import free_port
from .pod_sandbox import call
from .real_node import RealCluster, describe
from .real_release import RESTRICTED, RUNNER_IMAGE
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
    document = step_document(
        "on-s3", podTemplate={"envFrom": [{"secretRef": {"name": "s3-credentials"}}]},
        miniBatchSize="5")
    document["spec"]["input"] = {"type": "files", "uri": server.uri(f"{prefix}/in")}
    document["spec"]["output"] = {"uri": server.uri(f"{prefix}/out")}
    with step_namespace(real_cluster, pod_env, {"score.py": SCRIPT}) as namespace:
        create_step(real_cluster.plane, namespace, document)
        status = finished(real_cluster, namespace, "on-s3")
        assert condition_true(status, "Complete"), status
        assert status["items"] == {"total": 24, "succeeded": 24, "failed": 0}
        assert pod_env["AWS_SECRET_ACCESS_KEY"] not in str(status)  # no secret in the status
    cluster_output = Storage(server.uri(f"{prefix}/out")).read_bytes("parallel_run_step.txt")
    local = local_run(tmp_path, server, prefix)
    assert cluster_output == local
    assert cluster_output.decode().splitlines()[:2] == ["item0000.txt 0", "item0002.txt 2"]


ROOT = Path(__file__).resolve().parents[2]
SALES = ROOT / "examples" / "sales"


def test_the_many_models_sales_step_on_s3_on_real_nodes_equals_prs_run(
    real_cluster: RealCluster, operator_release: str,
    s3_for_pods: tuple[StorageServer, dict[str, str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """examples/sales/forecast.yaml with its hive-style Parquet folders on S3: one model per
    store x brand written by run() to output_dir, the fitted rows merged into one Parquet
    file; cluster and `prs run` agree on both."""
    server, pod_env = s3_for_pods
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    prefix = f"sales-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "data"
    subprocess.run([sys.executable, str(SALES / "generate.py"), "--rows", "20000", "--data",
                    str(data)], check=True, timeout=300, capture_output=True)
    bucket = Storage(server.uri(f"{prefix}/parquet"))
    for path in sorted((data / "parquet").rglob("*.parquet")):
        bucket.write_atomic(path.relative_to(data / "parquet").as_posix(), path.read_bytes())
    document = yaml.safe_load((SALES / "forecast.yaml").read_text())
    document["spec"]["input"]["uri"] = server.uri(f"{prefix}/parquet")
    document["spec"]["output"]["uri"] = server.uri(f"{prefix}/cluster-out")
    document["spec"]["code"] = {"entryScript": "forecast.py", "configMap": "code"}
    document["spec"]["podTemplate"] = {"envFrom": [{"secretRef": {"name": "s3-credentials"}}]}
    code = {"forecast.py": (SALES / "src" / "forecast.py").read_text()}
    with step_namespace(real_cluster, pod_env, code) as namespace:
        create_step(real_cluster.plane, namespace, document)
        status = finished(real_cluster, namespace, "forecast-sales")
        assert condition_true(status, "Complete"), status
    local = yaml.safe_load((SALES / "forecast.yaml").read_text())
    local["spec"]["input"]["uri"] = server.uri(f"{prefix}/parquet")
    local["spec"]["output"]["uri"] = server.uri(f"{prefix}/local-out")
    local["spec"]["code"]["sourceDirectory"] = str(SALES / "src")
    (tmp_path / "forecast.yaml").write_text(yaml.safe_dump(local))
    done = subprocess.run([sys.executable, "-m", "prs_runner.commands.prs_cli", "run",
                           str(tmp_path / "forecast.yaml")], env={**os.environ, **server.env},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    cluster_out, local_out = (Storage(server.uri(f"{prefix}/{o}")) for o in ("cluster-out",
                                                                            "local-out"))
    tables = [pq.read_table(pa.BufferReader(o.read_bytes("forecasts.parquet")))
              for o in (cluster_out, local_out)]
    assert tables[0].num_rows == 20000
    assert tables[0].schema == tables[1].schema
    frames = [table.to_pandas() for table in tables]
    for column in ("id", "store", "brand"):  # the same rows in the same order
        assert frames[0][column].tolist() == frames[1][column].tolist()
    # the same fits, up to the last bits of the image's own numpy and BLAS
    assert np.allclose(frames[0]["fitted_units"], frames[1]["fitted_units"], rtol=1e-9)
    models = [sorted(e.path for e in o.list_files() if e.path.startswith("models/"))
              for o in (cluster_out, local_out)]
    assert len(models[0]) == 12 and models[0] == models[1]  # 4 stores x 3 brands, via output_dir


@contextlib.contextmanager
def step_namespace(cluster: RealCluster, pod_env: dict[str, str],
                   code: dict[str, str]) -> Iterator[str]:
    """A restricted namespace with the ConfigMap `code` (CODE: file name -> text) and the
    Secret `s3-credentials` (POD_ENV)."""
    namespace = f"r-{uuid.uuid4().hex[:10]}"
    with cluster.plane.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels=RESTRICTED)))
        try:
            cluster.plane.wait_for_service_account(namespace)
            call(core.create_namespaced_config_map, namespace,
                 {"metadata": {"name": "code"}, "data": code})
            call(core.create_namespaced_secret, namespace,
                 {"metadata": {"name": "s3-credentials"}, "stringData": pod_env})
            yield namespace
        finally:
            core.delete_namespace(namespace, propagation_policy="Background")


def finished(cluster: RealCluster, namespace: str, name: str) -> dict[str, Any]:
    try:
        return wait_finished(cluster.plane, namespace, name, timeout=300)
    except AssertionError as error:
        pytest.fail(f"{error}\n{status_of(cluster.plane, namespace, name)}\n"
                    f"{describe(cluster, namespace)}", pytrace=False)


DIGITS = ROOT / "examples" / "digits"
DIGITS_IMAGE = "parallelrunstep/digits:real-nodes"


@pytest.fixture(scope="module")
def digits_image(real_cluster: RealCluster, operator_release: str,
                 tmp_path_factory: pytest.TempPathFactory) -> str:
    """examples/digits/Dockerfile's two lines on the release's runner image, in every node."""
    folder = tmp_path_factory.mktemp("digits-image")
    try:
        engine = DockerEngine.start()
        engine.build(DIGITS_IMAGE, ROOT / "tests" / "images" / "digits.Dockerfile", folder,
                     {"RUNNER_IMAGE": RUNNER_IMAGE})
        engine.docker("save", "-o", str(folder / "digits.tar"), DIGITS_IMAGE, timeout=600)
    except DockerError as exc:
        pytest.fail(f"the digits image: {exc}", pytrace=False)
    real_cluster.import_images(folder / "digits.tar")
    return DIGITS_IMAGE


def test_the_s3_digits_example_on_real_nodes_equals_prs_run(
    real_cluster: RealCluster, s3_for_pods: tuple[StorageServer, dict[str, str]],
    digits_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """examples/digits/s3-step.yaml as written (its bucket under a prefix here), in the digits
    image, the Secret `s3-credentials` given by its own podTemplate.envFrom."""
    server, pod_env = s3_for_pods
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    subprocess.run([sys.executable, str(DIGITS / "prepare.py")], check=True, timeout=300)
    prefix = f"digits-{uuid.uuid4().hex[:8]}"
    bucket = Storage(server.uri(prefix))
    for path in sorted((DIGITS / "data" / "digits").rglob("*.png")):
        bucket.write_atomic(f"digits/{path.relative_to(DIGITS / 'data' / 'digits').as_posix()}",
                            path.read_bytes())
    bucket.write_atomic("models/digits.joblib", (DIGITS / "models" / "digits.joblib").read_bytes())
    document = yaml.safe_load((DIGITS / "s3-step.yaml").read_text().replace(
        "s3://prs-examples/", f"{server.uri(prefix)}/"))
    document["spec"]["code"] = {"entryScript": "score.py", "configMap": "code"}
    document["spec"]["image"] = digits_image
    code = {"score.py": (DIGITS / "src" / "score.py").read_text()}
    with step_namespace(real_cluster, pod_env, code) as namespace:
        create_step(real_cluster.plane, namespace, document)
        status = finished(real_cluster, namespace, "predict-digits-s3")
        assert condition_true(status, "Complete"), status
        assert status["items"]["succeeded"] == 1797
    done = subprocess.run([sys.executable, "-m", "prs_runner.commands.prs_cli", "run",
                           str(DIGITS / "step.yaml"), "--output-uri", str(tmp_path / "local"),
                           "--fresh"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    cluster_text = Storage(server.uri(f"{prefix}/out/predict-digits")).read_bytes(
        "parallel_run_step.txt")
    assert cluster_text == (tmp_path / "local" / "parallel_run_step.txt").read_bytes()


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
