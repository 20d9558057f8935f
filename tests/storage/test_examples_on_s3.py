"""examples/digits/s3-step.yaml run by `prs run` against the S3 server, with what
prepare.py writes uploaded as its comment says: the same predictions as the local step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prs_runner.storage.filesystem import Storage
from tests.storage_servers import DEFAULT_BUCKET, StorageServer

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"


def prs_run(step: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(step),
                           *args], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_s3_digits_example_scores_like_the_local_one(
    s3_server: StorageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subprocess.run([sys.executable, str(DIGITS / "prepare.py")], check=True, timeout=300)
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    bucket = Storage(s3_server.uri("examples"))  # the example's bucket, under a prefix here
    for path in sorted((DIGITS / "data" / "digits").rglob("*.png")):
        bucket.write_atomic(f"digits/{path.relative_to(DIGITS / 'data' / 'digits').as_posix()}",
                            path.read_bytes())
    bucket.write_atomic("models/digits.joblib", (DIGITS / "models" / "digits.joblib").read_bytes())
    text = (DIGITS / "s3-step.yaml").read_text().replace(
        "s3://prs-examples/", f"s3://{DEFAULT_BUCKET}/examples/")
    document = yaml.safe_load(text)
    document["spec"]["code"]["sourceDirectory"] = str(DIGITS / "src")
    step = tmp_path / "s3-step.yaml"
    step.write_text(yaml.safe_dump(document))
    prs_run(step, s3_server.env)
    prs_run(DIGITS / "step.yaml", {}, "--output-uri", str(tmp_path / "local"), "--fresh")
    remote = Storage(s3_server.uri("examples/out/predict-digits"))
    assert remote.read_bytes("parallel_run_step.txt") == (
        tmp_path / "local" / "parallel_run_step.txt").read_bytes()
