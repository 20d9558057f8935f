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


# SDK v1: the keyword arguments of ParallelRunConfig and ParallelRunStep, written as JSON (as
# a user copies them out of their Python), in the shape of Azure's iris notebook.
V1_CONFIG = {
    "name": "iris-batch",
    "entry_script": "iris_score.py",
    "source_directory": "./scripts",
    "output_action": "append_row",
    "append_row_file_name": "iris_out.txt",
    "mini_batch_size": "2",
    "error_threshold": 5,
    "node_count": 1,
    "process_count_per_node": 2,
    "run_invocation_timeout": 60,
    "environment": "iris-env",
    "inputs": [{"name": "iris_data", "type": "file", "path": "./iris"}],
    "side_inputs": [{"name": "model", "path": "./model"}],
    "output": "./out",
    "arguments": ["--threshold", "1.5", "--allowed_failed_percent", "25"],
    "allow_reuse": False,
}

V1_SCRIPT = """\
import argparse, os

def init():
    global threshold, weight
    parser = argparse.ArgumentParser()
    parser.add_argument("--threshold", type=float)
    threshold = parser.parse_known_args()[0].threshold
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weight.txt")) as stream:
        weight = float(stream.read())

def run(mini_batch):
    out = []
    for path in mini_batch:
        with open(path) as stream:
            value = float(stream.read()) * weight
        out.append(f"{os.path.basename(path)} {'big' if value > threshold else 'small'}")
    return out
"""


def test_a_converted_v1_json_config_validates_and_runs_unchanged(tmp_path: Path) -> None:
    (tmp_path / "iris").mkdir()
    for n in range(6):
        (tmp_path / f"iris/flower_{n}.txt").write_text(f"{n}\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model/weight.txt").write_text("0.5\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts/iris_score.py").write_text(V1_SCRIPT)
    (tmp_path / "config.json").write_text(json.dumps(V1_CONFIG, indent=2))

    converted = prs(tmp_path, "convert", "config.json", "-o", "step.yaml")
    assert converted.returncode == 0, converted.stderr
    text = (tmp_path / "step.yaml").read_text()
    assert "environment: iris-env" in text  # no equivalent: said in a comment
    spec = yaml.safe_load(text)["spec"]
    assert (spec["processCountPerNode"], spec["errorThreshold"], spec["allowReuse"]) == (
        2, 5, False)

    validated = prs(tmp_path, "validate", "step.yaml")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "--allowed_failed_percent 25 sets spec.allowedFailedPercent" in validated.stdout

    ran = prs(tmp_path, "run", "step.yaml")
    assert ran.returncode == 0, ran.stderr
    lines = (tmp_path / "out/iris_out.txt").read_text().splitlines()
    assert sorted(lines) == [f"flower_{n}.txt {'big' if n * 0.5 > 1.5 else 'small'}"
                             for n in range(6)]
