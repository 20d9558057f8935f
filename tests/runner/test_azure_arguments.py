"""Azure's program arguments take effect under `prs run` as they do on Azure, and the script
still sees all of them."""

from __future__ import annotations

import subprocess
import sys

from tests.runner.conftest import MakeStep

# Every other mini-batch (of one file each) fails; the script records its own arguments.
HALF_FAILING = """
import argparse, json, os
def init():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    args, unknown = parser.parse_known_args()
    mark("args", json.dumps([args.model, unknown]).replace(" ", ""))
def run(mini_batch):
    number = int(os.path.basename(mini_batch[0])[4:8])
    if number % 2:
        raise ValueError(f"item {number} fails")
    return mini_batch
"""


def test_allowed_failed_percent_argument_fails_a_run_azure_would_fail(
    make_step: MakeStep,
) -> None:
    """5 of 10 mini-batches fail: the default (100 %) tolerates it, Azure's argument (30 %)
    does not."""
    arguments = ["--model", "m.pkl", "--allowed_failed_percent", "30", "--run_max_try", "1"]
    step = make_step(HALF_FAILING, files=10, miniBatchSize="1", arguments=arguments)
    result = step.run()
    assert result.returncode == 1
    job = step.job_result()
    assert (job["status"], job["reason"]) == ("Failed", "ErrorThresholdExceeded")
    assert job["message"].startswith("allowedFailedPercent exceeded: ")
    rows = step.report_rows()
    assert max(int(r["tries"]) for r in rows if r["status"] == "failed") == 1  # --run_max_try 1
    assert "spec.arguments: --allowed_failed_percent 30 sets spec.allowedFailedPercent: 30" \
        in result.stderr
    assert step.marks("args")[0] == (
        '["m.pkl",["--allowed_failed_percent","30","--run_max_try","1"]]')


def test_without_the_argument_the_same_run_succeeds(make_step: MakeStep) -> None:
    step = make_step(HALF_FAILING, files=10, miniBatchSize="1", runMaxTry=1)
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert step.job_result()["miniBatches"]["failed"] == 5


def test_validate_says_what_each_argument_does(make_step: MakeStep) -> None:
    step = make_step(HALF_FAILING, files=2, arguments=[
        "--error_threshold", "5", "--copy_logs_to_parent", "True"])
    result = subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.prs_cli", "validate", str(step.step)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "  spec.arguments: --error_threshold 5 sets spec.errorThreshold: 5",
        "  spec.arguments: --copy_logs_to_parent True has no effect here: every worker's log "
        "is always kept in the output's _prs/logs/",
    ]


def test_a_conflict_with_the_spec_is_refused_before_anything_runs(make_step: MakeStep) -> None:
    step = make_step(HALF_FAILING, files=2, runMaxTry=4, arguments=["--run_max_try", "2"])
    result = step.run()
    assert result.returncode != 0
    assert "spec.runMaxTry: 4 conflicts with --run_max_try 2 in spec.arguments" in result.stderr
    assert "Traceback" not in result.stderr
    assert not step.out.exists()
