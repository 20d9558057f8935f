"""The runner image processes the digits example in restricted containers (uid 10001, read-only
root filesystem, no capabilities, no network) and writes what `prs run` writes locally."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from prs_runner.execution.local_run import build_plan
from prs_runner.planning.plan_store import PLAN_FILE
from prs_runner.planning.plan_store import write_plan as store_plan
from prs_runner.step.validation import load_step
from prs_runner.storage.filesystem import Storage

from .docker_engine import PRS_UID, ROOT, DockerEngine

DIGITS = ROOT / "examples" / "digits"
OUTPUT_FILE = "parallel_run_step.txt"


@pytest.fixture(scope="module")
def digits_image(docker_engine: DockerEngine, runner_image: str,
                 tmp_path_factory: pytest.TempPathFactory) -> str:
    """The runner image plus the example's model dependencies, as the README tells users."""
    tag = "parallelrunstep/digits:dev"
    docker_engine.build(tag, Path(__file__).with_name("digits.Dockerfile"),
                        tmp_path_factory.mktemp("empty-context"), {"RUNNER_IMAGE": runner_image})
    return tag


@pytest.fixture(scope="module")
def digits_data() -> Path:
    subprocess.run([sys.executable, str(DIGITS / "prepare.py")], check=True, timeout=300)
    return DIGITS


def write_plan(output: Path) -> str:
    """What the planning does before the shard pods start: the plan file, owned by the pods'
    user (a pod gets a writable output through fsGroup)."""
    plan = build_plan(load_step(DIGITS / "step.yaml", [], str(output)))
    storage = Storage(str(output))
    store_plan(storage.uri_of(PLAN_FILE), plan)
    for path in [output, *output.rglob("*")]:
        os.chown(path, PRS_UID, PRS_UID)
    return storage.join(PLAN_FILE)


def test_runner_container_runs_shards_and_merge_like_prs_run(
    docker_engine: DockerEngine, digits_image: str, digits_data: Path, tmp_path: Path
) -> None:
    output = tmp_path / "container-out"
    output.mkdir()
    plan_uri = write_plan(output)
    node_count = json.loads((output / PLAN_FILE).read_text())["nodeCount"]
    assert node_count == 2
    mounts = [(digits_data, False), (output, True)]

    def run_shard(index: int) -> subprocess.CompletedProcess[str]:
        return docker_engine.run_restricted(
            digits_image, ["prs-runner", "shard", "--plan", plan_uri, "--index", str(index)],
            mounts)

    with ThreadPoolExecutor(node_count) as pods:  # side by side, as the Job's pods run
        shards = list(pods.map(run_shard, range(node_count)))
    for index, shard in enumerate(shards):
        assert shard.returncode == 0, f"shard {index}:\n{shard.stdout}\n{shard.stderr}"
    merge = docker_engine.run_restricted(digits_image, ["prs-runner", "merge", "--plan", plan_uri],
                                         mounts)
    assert merge.returncode == 0, merge.stdout + merge.stderr

    local_output = tmp_path / "local-out"
    local = subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(DIGITS / "step.yaml"),
         "--output-uri", str(local_output), "--fresh"],
        capture_output=True, text=True, timeout=300,
    )
    assert local.returncode == 0, local.stdout + local.stderr

    container_result = (output / OUTPUT_FILE).read_bytes()
    assert container_result == (local_output / OUTPUT_FILE).read_bytes()
    assert len(container_result.splitlines()) == 1797
    report = json.loads((output / "_prs/report/job_result.json").read_text())
    assert report["status"] == "Succeeded"
    assert report["items"]["succeeded"] == 1797
    # This test runs as root: files it did not create itself come from the containers' user.
    written = [output / OUTPUT_FILE, output / "_prs/report/job_result.json",
               *(output / "_prs/shards").iterdir()]
    assert len(written) == 2 + node_count
    assert {(path.stat().st_uid, path.stat().st_gid) for path in written} == {(PRS_UID, PRS_UID)}


def test_runner_container_is_unprivileged_and_read_only(
    docker_engine: DockerEngine, runner_image: str
) -> None:
    probe = docker_engine.run_restricted(runner_image, ["python", "-c", (
        "import os, sys\n"
        "print(os.getuid(), os.getgid(), open('/proc/self/status').read().split('CapEff:')[1]"
        ".split()[0])\n"
        "for path in ('/probe', '/opt/venv/probe', '/tmp/probe'):\n"
        "    try:\n"
        "        open(path, 'w').close()\n"
        "        print(path, 'writable')\n"
        "    except OSError as error:\n"
        "        print(path, error.strerror)\n"
    )], mounts=[])
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.splitlines() == [
        f"{PRS_UID} {PRS_UID} 0000000000000000",
        "/probe Read-only file system",
        "/opt/venv/probe Read-only file system",
        "/tmp/probe writable",
    ]
