"""What a script written for Azure's runtime finds around it: the working directory is the
code folder (relative paths in its arguments and its own files resolve there, wherever
`prs run` was started), and AZUREML_BI_OUTPUT_PATH names the output folder."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.runner.conftest import MakeStep, StepDir

SCRIPT = """
import argparse, json, os
def init():
    global labels
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels")
    args, _ = parser.parse_known_args()
    with open(args.labels) as stream:  # relative: resolved in the code folder
        labels = stream.read().split()
    mark("seen", json.dumps({"cwd": os.getcwd(),
                             "azure_output": os.environ["AZUREML_BI_OUTPUT_PATH"],
                             "output": os.environ["PRS_OUTPUT_DIR"]}).replace(" ", ""))
def run(mini_batch):
    return [labels[int(open(path).read()) % 2] for path in mini_batch]
"""


def run_elsewhere(step: StepDir) -> subprocess.CompletedProcess[str]:
    """`prs run` started from a folder of its own, neither the step's nor the code's."""
    elsewhere = step.root / "elsewhere"
    elsewhere.mkdir()
    return subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(step.step)],
        capture_output=True, text=True, timeout=120, cwd=elsewhere)


def test_relative_paths_resolve_in_the_code_folder(make_step: MakeStep) -> None:
    step = make_step(SCRIPT, files=4, arguments=["--labels", "labels.txt"])
    (step.root / "src" / "labels.txt").write_text("even odd\n")
    result = run_elsewhere(step)
    assert result.returncode == 0, result.stderr
    assert sorted(step.output_lines()) == ["even", "even", "odd", "odd"]
    seen = json.loads(step.marks("seen")[0])
    assert seen["cwd"] == str((step.root / "src").resolve())
    assert seen["azure_output"] == seen["output"] == str(step.out.resolve())


BINDINGS = """
import argparse, os
def init():
    global model, out
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--out")
    args, _ = parser.parse_known_args()
    model, out = open(os.path.join(args.model, "weights.txt")).read().strip(), args.out
def run(mini_batch):
    with open(os.path.join(out, "seen.txt"), "a") as stream:
        stream.write(f"{len(mini_batch)}\\n")
    return [f"{model} {os.path.basename(p)}" for p in mini_batch]
"""


def test_azure_bindings_in_arguments_are_filled_in(make_step: MakeStep) -> None:
    """A step `prs convert` writes: ${{inputs.model}} is the side input's local path and
    ${{outputs.scores}} the output folder, wherever `prs run` was started."""
    step = make_step(BINDINGS, files=3, arguments=[
        "--model", "${{inputs.model}}", "--out", "${{ outputs.scores }}"],
        sideInputs=[{"name": "model", "uri": "./models"}])
    (step.root / "models").mkdir()
    (step.root / "models" / "weights.txt").write_text("w1\n")
    result = run_elsewhere(step)
    assert result.returncode == 0, result.stderr
    assert sorted(step.output_lines()) == [f"w1 item{i:04d}.txt" for i in range(3)]
    assert sum(int(n) for n in (step.out / "seen.txt").read_text().split()) == 3


ENDPOINT_SCRIPT = """
import os
def init():
    global model
    # Azure batch deployments' scoring scripts find their model so.
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights.txt")) as stream:
        model = stream.read().strip()
    mark("run-id", os.environ["AZUREML_RUN_ID"])
def run(mini_batch):
    return [f"{model} {os.path.basename(p)}" for p in mini_batch]
"""


def test_a_side_input_named_model_is_azures_model_dir(make_step: MakeStep) -> None:
    step = make_step(ENDPOINT_SCRIPT, files=3, sideInputs=[{"name": "model", "uri": "./models"}])
    (step.root / "models").mkdir()
    (step.root / "models" / "weights.txt").write_text("w2\n")
    result = run_elsewhere(step)
    assert result.returncode == 0, result.stderr
    assert sorted(step.output_lines()) == [f"w2 item{i:04d}.txt" for i in range(3)]
    assert set(step.marks("run-id")) == {"OfflineRun"}
