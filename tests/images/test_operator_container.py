"""The operator image, started for real (non-root, read-only root filesystem, no
capabilities) against the cluster tier's control plane, reconciles a step to Complete."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import control_plane, namespace  # noqa: F401 (fixtures)
from tests.cluster.controlplane import ControlPlane, free_port
from tests.cluster.crd_install import install_crd
from tests.cluster.operator_process import grant_operator_rules
from tests.cluster.step_scenarios import (
    condition_true,
    create_step,
    output_lines,
    stage_step,
    step_document,
    wait_finished,
)

from .docker_engine import DockerEngine


@pytest.fixture
def operator_container(docker_engine: DockerEngine, operator_image: str,
                       control_plane: ControlPlane,  # noqa: F811
                       tmp_path: Path) -> Iterator[tuple[str, int]]:
    with control_plane.api_client() as api:
        install_crd(api)
    kubeconfig = grant_operator_rules(control_plane, tmp_path)
    ca_file = Path(json.loads(kubeconfig.read_text())["clusters"][0]["cluster"][
        "certificate-authority"])
    key_file = tmp_path / "progress.key"
    key_file.write_bytes(os.urandom(32).hex().encode())
    os.chmod(tmp_path, 0o755)
    for path in (kubeconfig, key_file, ca_file):
        os.chmod(path, 0o644)  # the container runs as uid 10001
    port = free_port()
    container = docker_engine.start_restricted(
        operator_image, ["python", "-m", "prs_operator"],
        [(kubeconfig, False), (key_file, False), (ca_file, False)], network="host",
        env={"KUBECONFIG": str(kubeconfig), "PRS_HTTP_PORT": str(port),
             "PRS_PROGRESS_URL": f"http://127.0.0.1:{port}/v1/progress",
             "PRS_PROGRESS_KEY_FILE": str(key_file), "PRS_RUNNER_IMAGE": "prs-runner:test"})
    try:
        yield container, port
    finally:
        logs = docker_engine.docker("logs", container, check=False)
        print(logs.stdout[-4000:], logs.stderr[-4000:])
        docker_engine.remove(container)


def test_the_operator_image_reconciles_a_step(
    docker_engine: DockerEngine, operator_container: tuple[str, int],
    control_plane: ControlPlane, namespace: str,  # noqa: F811
) -> None:
    container, _ = operator_container
    user = docker_engine.docker("exec", container, "id", "-u").stdout.strip()
    assert user == "10001"
    claim = stage_step(control_plane, namespace, 6)
    create_step(control_plane, namespace, step_document("in-image"))
    status = wait_finished(control_plane, namespace, "in-image", timeout=120)
    assert condition_true(status, "Complete"), status
    assert output_lines(claim, "in-image") == [f"item{n:04d}.txt" for n in range(6)]
    inspect = docker_engine.docker("inspect", container).stdout
    config = json.loads(inspect)[0]["HostConfig"]
    assert config["ReadonlyRootfs"] is True and config["CapDrop"] == ["ALL"]


def test_the_operator_image_holds_no_data_stack(docker_engine: DockerEngine,
                                                operator_image: str, runner_image: str) -> None:
    probe = docker_engine.run_restricted(operator_image, [
        "python", "-c", "import importlib.util as u, prs_operator.__main__; "
        "print([m for m in ('pandas', 'pyarrow', 'numpy') if u.find_spec(m)])"], [])
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.strip() == "[]", probe.stdout
    operator_size = docker_engine.image_size(operator_image)
    runner_size = docker_engine.image_size(runner_image)
    print(f"operator image {operator_size / 2**20:.0f} MiB, runner image "
          f"{runner_size / 2**20:.0f} MiB")
    # pandas, pyarrow and numpy take ~100 MiB of the runner image (their tests and headers
    # already dropped): the operator image is that much smaller (283 vs 383 MiB when written).
    assert runner_size - operator_size > 80 * 2**20
