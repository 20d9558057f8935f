"""`prs convert` end to end, as a migrating user runs it: an Azure ML CLI v2 parallel job in
the shape of Azure's MNIST example becomes a step that `prs validate` accepts and `prs run`
runs, with the script unchanged and Azure's settings carried over: its input data, model and
optional arguments (`$[[...]]`) reach the script as they would on Azure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

JOB = """\
$schema: https://azuremlschemas.azureedge.net/latest/parallelJob.schema.json
type: parallel
name: digits_batch_score
compute: azureml:cpu-cluster
inputs:
  job_data_path:
    type: uri_folder
    path: ./data/digits
    mode: ro_mount
  digits:
    type: uri_file
    path: ./models/digits.txt
    mode: download
  score_model: digits
  lr: 0.5
  unset:
    type: number
    optional: true
outputs:
  job_output_path:
    type: uri_file
    path: ./out/digits_outputs.txt
    mode: rw_mount
input_data: ${{inputs.job_data_path}}
mini_batch_size: "3"
resources:
  instance_count: 2
max_concurrency_per_instance: 1
mini_batch_error_threshold: 5
error_threshold: 10
logging_level: "DEBUG"
retry_settings:
  max_retries: 2
  timeout: 60
environment_variables:
  OMP_NUM_THREADS: "1"
task:
  type: run_function
  code: ./src
  entry_script: digit_identification.py
  environment: azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest
  program_arguments: >-
    --model ${{inputs.digits}} --model_name ${{inputs.score_model}}
    --data ${{inputs.job_data_path}} $[[--lr ${{inputs.lr}}]] $[[--unset ${{inputs.unset}}]]
    --allowed_failed_percent 30 --copy_logs_to_parent True
  append_row_to: ${{outputs.job_output_path}}
"""

# Azure's shape: module-level init()/run(), the model found by name, its own arguments read
# with parse_known_args beside the runtime's.
SCRIPT = """\
import argparse, os
from azureml.core import Model

def init():
    global offset, name, args
    parser = argparse.ArgumentParser()
    parser.add_argument("--model_name")
    parser.add_argument("--model")
    parser.add_argument("--data")
    parser.add_argument("--lr")
    parser.add_argument("--unset", default="left out")
    args, _ = parser.parse_known_args()
    name = args.model_name
    assert os.path.samefile(args.model, Model.get_model_path(model_name=name))
    with open(Model.get_model_path(model_name=name)) as stream:
        offset = int(stream.read())

def run(mini_batch):
    results = []
    for image in mini_batch:
        assert os.path.samefile(os.path.dirname(image), args.data)  # the input's folder
        with open(image, "rb") as stream:
            label = (sum(stream.read()) + offset) % 10
        results.append("{}: {} ({} {} {})".format(os.path.basename(image), label, name, args.lr,
                                                 args.unset))
    return results
"""


def prs(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "prs_runner.commands.prs_cli", *args],
                          capture_output=True, text=True, timeout=120, cwd=folder)


def test_a_converted_azure_job_validates_and_runs_unchanged(tmp_path: Path) -> None:
    (tmp_path / "data/digits").mkdir(parents=True)
    for n in range(8):
        (tmp_path / f"data/digits/img_{n}.bin").write_bytes(bytes([n, n]))
    (tmp_path / "models").mkdir()
    (tmp_path / "models/digits.txt").write_text("3\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src/digit_identification.py").write_text(SCRIPT)
    (tmp_path / "job.yml").write_text(JOB)

    converted = prs(tmp_path, "convert", "job.yml", "-o", "step.yaml")
    assert converted.returncode == 0, converted.stderr
    text = (tmp_path / "step.yaml").read_text()
    assert "# compute: azureml:cpu-cluster: no equivalent" in text  # said, not dropped
    spec = yaml.safe_load(text)["spec"]
    assert (spec["nodeCount"], spec["processCountPerNode"], spec["runMaxTry"]) == (2, 1, 3)
    assert (spec["errorThreshold"], spec["miniBatchErrorThreshold"]) == (10, 5)
    assert spec["loggingLevel"] == "DEBUG"

    validated = prs(tmp_path, "validate", "step.yaml")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "--allowed_failed_percent 30 sets spec.allowedFailedPercent" in validated.stdout

    ran = prs(tmp_path, "run", "step.yaml")
    assert ran.returncode == 0, ran.stderr
    assert spec["output"]["uri"] == "./out" and spec["appendRowFileName"] == "digits_outputs.txt"
    lines = (tmp_path / "out/digits_outputs.txt").read_text().splitlines()
    assert sorted(lines) == sorted(f"img_{n}.bin: {(2 * n + 3) % 10} (digits 0.5 left out)"
                                   for n in range(8))
    result = json.loads((tmp_path / "out/_prs/report/job_result.json").read_text())
    assert result["status"] == "Succeeded", result
