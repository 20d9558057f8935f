"""The environment of a worker process: the step's env, PRS_* variables, side inputs, GPUs."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from prs_runner.execution.environment import (
    _dev_names,
    gpu_for_process,
    visible_gpus,
    worker_environment,
)


@pytest.mark.parametrize(
    ("env", "devices", "expected"),
    [
        pytest.param({}, [], [], id="no-gpu"),
        pytest.param({}, ["nvidia1", "nvidia0", "nvidiactl", "nvidia-uvm", "null"], ["0", "1"],
                     id="device-files"),
        pytest.param({}, ["nvidia10", "nvidia2", "nvidia1x", "xnvidia3"], ["0", "1"],
                     id="host-numbers-are-not-cuda-indices"),
        pytest.param({}, ["nvidia3", "nvidia5", "nvidiactl"], ["0", "1"],
                     id="a-container-given-host-gpus-3-and-5"),
        pytest.param({"NVIDIA_VISIBLE_DEVICES": "3,5"}, ["nvidia3", "nvidia5"], ["0", "1"],
                     id="device-plugin-indices"),
        pytest.param({"NVIDIA_VISIBLE_DEVICES": "GPU-x"}, ["nvidia7"], ["0"],
                     id="device-plugin-uuid"),
        pytest.param({"NVIDIA_VISIBLE_DEVICES": "all"}, ["nvidia0", "nvidia1"], ["0", "1"],
                     id="device-plugin-all"),
        pytest.param({"NVIDIA_VISIBLE_DEVICES": "void"}, ["nvidia0"], [], id="plugin-void"),
        pytest.param({"NVIDIA_VISIBLE_DEVICES": "none"}, ["nvidia0"], [], id="plugin-none"),
        pytest.param({"CUDA_VISIBLE_DEVICES": "4,5"}, ["nvidia0"], ["4", "5"],
                     id="env-wins-over-devices"),
        pytest.param({"CUDA_VISIBLE_DEVICES": "GPU-a1,GPU-b2"}, [], ["GPU-a1", "GPU-b2"],
                     id="uuids"),
        pytest.param({"CUDA_VISIBLE_DEVICES": "3,,1, "}, [], ["3", "1"], id="blank-entries"),
        pytest.param({"CUDA_VISIBLE_DEVICES": " 2, 0"}, [], ["2", "0"], id="spaces"),
        pytest.param({"CUDA_VISIBLE_DEVICES": ""}, ["nvidia0"], [], id="hidden-by-env"),
    ],
)
def test_visible_gpus(env: dict[str, str], devices: list[str], expected: list[str]) -> None:
    assert visible_gpus(env, devices) == expected


@pytest.mark.parametrize(
    ("gpus", "process", "expected"),
    [([], 0, None), (["7"], 0, "7"), (["7"], 3, "7"), (["0", "1", "2"], 4, "1"),
     (["0", "1", "2"], 2, "2")],
)
def test_processes_take_the_gpus_in_turn(gpus: list[str], process: int, expected: str | None
                                         ) -> None:
    assert gpu_for_process(gpus, process) == expected


def test_device_names_come_from_dev() -> None:
    assert "null" in _dev_names()


SPEC: dict[str, Any] = {
    "env": [{"name": "MODE", "value": "fast"}, {"name": "RETRIES", "value": 3},
            {"name": "EMPTY"}],
    "output": {"uri": "file:///data/out"},
    "loggingLevel": "DEBUG",
    "sideInputs": [{"name": "my-model", "uri": "file:///models/m"},
                   {"name": "labels", "uri": "s3://bucket/labels"}],
}


def test_worker_environment() -> None:
    base = {"HOME": "/root", "MODE": "slow", "CUDA_VISIBLE_DEVICES": "2,3"}
    env = worker_environment(SPEC, shard=4, process=3, code_root="/code", base=base)
    assert env == {
        "HOME": "/root",
        "MODE": "fast",  # the step's env overrides the pod's
        "RETRIES": "3",
        "EMPTY": "",
        "PRS_SHARD_INDEX": "4",
        "PRS_PROCESS_INDEX": "3",
        "PRS_OUTPUT_DIR": "/data/out",
        "AZUREML_BI_OUTPUT_PATH": "/data/out",  # Azure's name for it
        "AZUREML_RUN_ID": "OfflineRun",
        "PRS_CODE_ROOT": "/code",
        "PRS_LOGGING_LEVEL": "DEBUG",
        "PYTHONUNBUFFERED": "1",
        "PRS_SIDE_INPUT_MY_MODEL": "/models/m",
        "PRS_SIDE_INPUT_LABELS": "s3://bucket/labels",  # remote: the URI as it is
        "PRS_SIDE_INPUT_NAMES": "my-model=PRS_SIDE_INPUT_MY_MODEL,labels=PRS_SIDE_INPUT_LABELS",
        "CUDA_VISIBLE_DEVICES": "3",  # one of the pod's GPUs per process
    }


def test_side_inputs_on_object_storage_are_their_local_copies() -> None:
    env = worker_environment(SPEC, 0, 0, "/code", base={},
                             side_input_paths={"labels": "/tmp/prs-side-0-x/labels.txt"})
    assert env["PRS_SIDE_INPUT_LABELS"] == "/tmp/prs-side-0-x/labels.txt"
    assert env["PRS_SIDE_INPUT_MY_MODEL"] == "/models/m"  # local: where it is


def test_an_object_store_output_gets_a_local_output_dir() -> None:
    env = worker_environment(SPEC, 0, 0, "/code", base={}, output_dir="/tmp/prs-staging/output")
    assert env["PRS_OUTPUT_DIR"] == "/tmp/prs-staging/output"
    assert worker_environment(SPEC, 0, 0, "/code", base={})["PRS_OUTPUT_DIR"] == "/data/out"


def test_the_base_is_not_changed() -> None:
    base = {"CUDA_VISIBLE_DEVICES": "0,1"}
    worker_environment(SPEC, 0, 1, "/code", base)
    assert base == {"CUDA_VISIBLE_DEVICES": "0,1"}


@pytest.mark.parametrize("side_inputs", [[], None], ids=["empty", "null"])
def test_without_side_inputs_and_gpus(side_inputs: list[Any] | None) -> None:
    spec = {**SPEC, "env": [], "output": {"uri": "s3://bucket/out"}, "sideInputs": side_inputs}
    env = worker_environment(spec, 0, 0, "/code", {"CUDA_VISIBLE_DEVICES": ""})
    assert env == {
        "CUDA_VISIBLE_DEVICES": "",  # no GPU is visible: nothing to choose
        "PRS_SHARD_INDEX": "0",
        "PRS_PROCESS_INDEX": "0",
        "PRS_OUTPUT_DIR": "s3://bucket/out",
        "AZUREML_BI_OUTPUT_PATH": "s3://bucket/out",
        "AZUREML_RUN_ID": "OfflineRun",
        "PRS_CODE_ROOT": "/code",
        "PRS_LOGGING_LEVEL": "DEBUG",
        "PYTHONUNBUFFERED": "1",
        "PRS_SIDE_INPUT_NAMES": "",
    }


def test_the_runner_variables_win_over_the_steps_env() -> None:
    spec = {**SPEC, "env": [{"name": "PRS_SHARD_INDEX", "value": "9"}]}
    env = worker_environment(spec, 1, 0, "/code", {"CUDA_VISIBLE_DEVICES": ""})
    assert env["PRS_SHARD_INDEX"] == "1"


def test_azure_output_path_follows_the_local_output_dir_unless_the_step_sets_it() -> None:
    base = {"CUDA_VISIBLE_DEVICES": "", "AZUREML_BI_OUTPUT_PATH": "/from/the/shell"}
    env = worker_environment(SPEC, 0, 0, "/code", base, output_dir="/tmp/prs-staging/output")
    assert env["AZUREML_BI_OUTPUT_PATH"] == "/tmp/prs-staging/output"
    spec = {**SPEC, "env": [{"name": "AZUREML_BI_OUTPUT_PATH", "value": "/mine"}]}
    assert worker_environment(spec, 0, 0, "/code", base)["AZUREML_BI_OUTPUT_PATH"] == "/mine"


def test_a_spec_without_side_inputs_field() -> None:
    spec = {k: v for k, v in SPEC.items() if k != "sideInputs"}
    env = worker_environment(spec, 0, 0, "/code", {"CUDA_VISIBLE_DEVICES": ""})
    assert env["PRS_SIDE_INPUT_NAMES"] == ""


def test_the_process_environment_is_the_default_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENARIO_INHERITED", "yes")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,6")
    env = worker_environment(SPEC, 0, 0, "/code")
    assert env["SCENARIO_INHERITED"] == "yes"
    assert env["CUDA_VISIBLE_DEVICES"] == "5"


def test_without_cuda_visible_devices_the_machines_gpus_are_used() -> None:
    env = worker_environment(SPEC, 0, 1, "/code", base={})
    found = sorted(int(n[6:]) for n in os.listdir("/dev") if re.fullmatch(r"nvidia\d+", n))
    if found:  # a GPU machine: the second process takes the second GPU, in turn
        assert env["CUDA_VISIBLE_DEVICES"] == str(found[1 % len(found)])
    else:  # nothing to choose: the variable stays unset, not set to no GPU
        assert "CUDA_VISIBLE_DEVICES" not in env


def test_a_side_input_named_model_is_azures_model_dir_unless_the_step_sets_it() -> None:
    spec = {**SPEC, "sideInputs": [{"name": "labels", "uri": "file:///l"},
                                   {"name": "model", "uri": "file:///models/m"},
                                   {"name": "model2", "uri": "file:///models/x"}]}
    env = worker_environment(spec, 0, 0, "/code", {"AZUREML_MODEL_DIR": "/shell"})
    assert env["AZUREML_MODEL_DIR"] == env["PRS_SIDE_INPUT_MODEL"] == "/models/m"
    copied = worker_environment(spec, 0, 0, "/code", {},
                                side_input_paths={"model": "/tmp/prs-side-0/model"})
    assert copied["AZUREML_MODEL_DIR"] == "/tmp/prs-side-0/model"  # the local copy
    mine = {**spec, "env": [{"name": "AZUREML_MODEL_DIR", "value": "/mine"},
                            {"name": "AZUREML_RUN_ID", "value": "run-7"}]}
    env = worker_environment(mine, 0, 0, "/code", {})
    assert (env["AZUREML_MODEL_DIR"], env["AZUREML_RUN_ID"]) == ("/mine", "run-7")
    assert "AZUREML_MODEL_DIR" not in worker_environment(SPEC, 0, 0, "/code", {})


def test_azures_run_id_is_the_offline_runs() -> None:
    from prs_runner.azure_names.core import OFFLINE_RUN_ID
    assert worker_environment(SPEC, 0, 0, "/code", {})["AZUREML_RUN_ID"] == OFFLINE_RUN_ID
