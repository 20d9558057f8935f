"""What run() returns becomes output and counts (docs/contract.md §3 and §4)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.runner.conftest import MakeStep

ECHO = """
import os
def run(mini_batch):
    return [os.path.basename(p) + " " + open(p).read().strip() for p in mini_batch]
"""


def test_output_holds_every_item_once_in_mini_batch_order(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=41, miniBatchSize="3", nodeCount=3, processCountPerNode=2)
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert step.output_lines() == [f"item{i:04d}.txt {i}" for i in range(41)]
    job = step.job_result()
    assert job["status"] == "Succeeded"
    assert job["miniBatches"] == {"total": 14, "succeeded": 14, "failed": 0, "pending": 0}
    assert job["items"] == {"total": 41, "succeeded": 41, "failed": 0}
    assert "14 succeeded" in result.stdout and "41 succeeded" in result.stdout


def test_short_return_fails_items_not_the_mini_batch_nor_retries(make_step: MakeStep) -> None:
    step = make_step("""
def run(mini_batch):
    mark("calls")
    return mini_batch[:1]
""", files=10, miniBatchSize="5", miniBatchErrorThreshold=0)
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert len(step.marks("calls")) == 2
    job = step.job_result()
    assert job["items"] == {"total": 10, "succeeded": 2, "failed": 8}
    assert job["miniBatches"]["failed"] == 0
    assert len(step.output_lines()) == 2


def test_none_return_fails_all_items(make_step: MakeStep) -> None:
    step = make_step("def run(mini_batch):\n    return None\n", files=6, miniBatchSize="3")
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert step.job_result()["items"] == {"total": 6, "succeeded": 0, "failed": 6}
    assert step.output_lines() == []


def test_extra_elements_are_written_with_a_warning(make_step: MakeStep) -> None:
    step = make_step("def run(mini_batch):\n    return mini_batch * 2\n", files=4)
    assert step.run().returncode == 0
    assert len(step.output_lines()) == 8
    assert step.job_result()["items"]["failed"] == 0
    logs = "".join(p.read_text() for p in (step.out / "_prs/logs").rglob("*.log"))
    assert "returned 4 elements for 2 items" in logs


def test_numpy_arrays_and_tuples_are_written_element_wise(make_step: MakeStep) -> None:
    step = make_step("""
import numpy as np
def run(mini_batch):
    if "item0000" in mini_batch[0]:
        return np.array([0.5, 1.5])
    return tuple(len(p) for p in mini_batch)
""", files=4)
    assert step.run().returncode == 0
    assert step.output_lines()[:2] == ["0.5", "1.5"]
    assert len(step.output_lines()) == 4


def test_two_argument_run_gets_the_context(make_step: MakeStep) -> None:
    step = make_step("""
def run(mini_batch, context):
    return [f"{context.minibatch_index} {context.shard_index} {context.process_index} "
            f"{context.output_dir} {sorted(context.side_inputs)}" for _ in mini_batch]
""", files=4, nodeCount=2, processCountPerNode=1,
        sideInputs=[{"name": "model-file", "uri": "./data/item0000.txt"}])
    result = step.run()
    assert result.returncode == 0, result.stderr
    lines = step.output_lines()
    # Mini-batch I is shard I's, unless the other shard was done first and took it over (a
    # slow start under load): the context names the shard and process that ran it.
    ran = {line.split()[0]: line.split()[1:3] for line in lines}
    assert set(ran) == {"0", "1"} and all(shard in "01" and process == "0"
                                          for shard, process in ran.values()), lines
    assert str(step.out) in lines[0] and "['model-file']" in lines[0]


def test_arguments_env_side_inputs_and_entry_script_helper(make_step: MakeStep) -> None:
    step = make_step("""
import argparse, os, sys
from prs_runner.entry_script import EntryScript
def init():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--threshold", type=float)
    ARGS, _ = parser.parse_known_args()
def run(mini_batch):
    entry = EntryScript()
    entry.logger.info("hello from the script")
    return [f"{ARGS.threshold} {sys.argv[-1]} {os.environ['LOG_FORMAT']} "
            f"{os.environ['PRS_SIDE_INPUT_MODEL_FILE']} {entry.side_inputs['model-file']} "
            f"{entry.shard_index} {entry.process_index} {entry.output_dir}"]
""", files=2, processCountPerNode=1, arguments=["--threshold", "0.5", "--extra"],
        env=[{"name": "LOG_FORMAT", "value": "json"}],
        sideInputs=[{"name": "model-file", "uri": "./data/item0001.txt"}])
    result = step.run()
    assert result.returncode == 0, result.stderr
    side = str(step.root / "data" / "item0001.txt")
    assert step.output_lines() == [f"0.5 --extra json {side} {side} 0 0 {step.out}"]
    log = (step.out / "_prs/logs/0/0.log").read_text()
    assert "hello from the script" in log


def test_the_steps_env_reaches_imports_and_sys_path(make_step: MakeStep, tmp_path: Path) -> None:
    """Workers are forked from their supervisor: the step's env must still be in place before
    anything reads it, PYTHONPATH included (a module importable only through it)."""
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "helper_module.py").write_text("VALUE = 'from PYTHONPATH'\n")
    step = make_step("""
import os
import helper_module
import numpy
def run(mini_batch):
    return [f"{helper_module.VALUE} {os.environ['OMP_NUM_THREADS']}"]
""", files=1, miniBatchSize="1", env=[{"name": "PYTHONPATH", "value": str(extra)},
                                      {"name": "OMP_NUM_THREADS", "value": "1"}])
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert step.output_lines() == ["from PYTHONPATH 1"]


def test_custom_file_name(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=3, appendRowFileName="scores.txt")
    assert step.run().returncode == 0
    assert len(step.output_lines("scores.txt")) == 3
    assert not (step.out / "parallel_run_step.txt").exists()


def test_summary_only_writes_no_output_file(make_step: MakeStep) -> None:
    step = make_step("""
import os
def run(mini_batch, context):
    for p in mini_batch:
        open(os.path.join(context.output_dir, os.path.basename(p) + ".out"), "w").write("x")
    return mini_batch
""", files=4, outputAction="summary_only")
    result = step.run()
    assert result.returncode == 0, result.stderr
    assert not (step.out / "parallel_run_step.txt").exists()
    assert len(list(step.out.glob("*.out"))) == 4
    assert step.job_result()["items"]["succeeded"] == 4


def test_report_lists_every_mini_batch(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=5, nodeCount=2)
    assert step.run().returncode == 0
    rows = step.report_rows()
    assert [r["id"] for r in rows] == ["0", "1", "2"]
    assert {r["shard"] for r in rows} == {"0", "1"}
    assert [r["items"] for r in rows] == ["2", "2", "1"]
    assert all(r["status"] == "succeeded" and r["tries"] == "1" for r in rows)
    assert os.path.exists(step.out / "_prs/logs/1/0.log")


def test_glob_filters_and_sorts_recursively(make_step: MakeStep) -> None:
    step = make_step(ECHO, files=3, input={"type": "files", "uri": "./data", "glob": "**/*.csv"})
    nested = step.root / "data" / "b" / "c"
    nested.mkdir(parents=True)
    (nested / "z.csv").write_text("z\n")
    (step.root / "data" / "a.csv").write_text("a\n")
    assert step.run().returncode == 0, step.run().stderr
    assert step.output_lines() == ["a.csv a", "z.csv z"]


@pytest.mark.parametrize(("level", "runner_lines", "script_lines"), [
    ("DEBUG", {"init() done in", "mini-batch 0, try 1: 2 items, 2 results in"},
     {"debug from the script", "info from the script"}),
    ("INFO", {"init() done in"}, {"info from the script"}),
    ("WARNING", set(), set()),
])
def test_logging_level_sets_what_the_worker_logs_hold(
    make_step: MakeStep, level: str, runner_lines: set[str], script_lines: set[str]
) -> None:
    """loggingLevel (Azure's logging_level) is honoured by the runner's own lines and by the
    script's loggers: DEBUG adds a line per mini-batch, WARNING leaves only problems."""
    step = make_step("""
import logging
from azureml_user.parallel_run import EntryScript
def run(mini_batch):
    EntryScript().logger.debug("debug from the script")
    EntryScript().logger.info("info from the script")
    return mini_batch
""", files=2, processCountPerNode=1, loggingLevel=level)
    result = step.run()
    assert result.returncode == 0, result.stderr
    log = (step.out / "_prs/logs/0/0.log").read_text()
    every = {"init() done in", "mini-batch 0, try 1: 2 items, 2 results in",
             "debug from the script", "info from the script"}
    assert {line for line in every if line in log} == runner_lines | script_lines, log
