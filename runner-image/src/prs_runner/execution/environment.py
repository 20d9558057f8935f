"""The environment of a worker process (docs/contract.md §3). Pure."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from prs_runner.step.spec import SideInput
from prs_runner.storage.filesystem import local_root


def visible_gpus(env: Mapping[str, str], device_names: list[str]) -> list[str]:
    """GPU ids as CUDA in this process numbers them. CUDA_VISIBLE_DEVICES, when set, already
    is (indices or UUIDs). Otherwise CUDA numbers the GPUs it can see from 0, whatever their
    host numbers: a container given host GPUs 3 and 5 (/dev/nvidia3, /dev/nvidia5, or the
    device plugin's NVIDIA_VISIBLE_DEVICES=3,5) has GPUs 0 and 1."""
    given = env.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [g.strip() for g in given.split(",") if g.strip()]
    devices = [n for n in device_names if re.fullmatch(r"nvidia\d+", n)]
    plugin = env.get("NVIDIA_VISIBLE_DEVICES")
    if plugin is not None and plugin.strip() not in ("all", ""):
        count = 0 if plugin.strip() in ("none", "void") else len(
            [g for g in plugin.split(",") if g.strip()])
    else:
        count = len(devices)
    return [str(index) for index in range(count)]


def gpu_for_process(gpus: list[str], process: int) -> str | None:
    return gpus[process % len(gpus)] if gpus else None


# Azure's batch deployments name the model's folder AZUREML_MODEL_DIR; here it is the side
# input of this name (the name Azure's parallel jobs give their model input).
AZURE_MODEL_INPUT = "model"
# Run.get_context().id under this runtime (azure_names.core.OFFLINE_RUN_ID): one run per step.
AZURE_RUN_ID = "OfflineRun"


def worker_environment(
    spec: Mapping[str, Any], shard: int, process: int, code_root: str,
    base: Mapping[str, str] | None = None, side_input_paths: Mapping[str, str] | None = None,
    output_dir: str | None = None,
) -> dict[str, str]:
    """From the resolved spec alone, so workers can start while the input is still planned;
    SIDE_INPUT_PATHS: local copies of side inputs on object storage, by name; OUTPUT_DIR:
    the local folder run() writes its files to when the output is on object storage."""
    env = dict(os.environ if base is None else base)
    for item in spec["env"]:
        env[item["name"]] = str(item.get("value", ""))
    output = output_dir or local_root(spec["output"]["uri"]) or spec["output"]["uri"]
    env.update(
        PRS_SHARD_INDEX=str(shard),
        PRS_PROCESS_INDEX=str(process),
        PRS_OUTPUT_DIR=output,
        PRS_CODE_ROOT=code_root,
        PRS_LOGGING_LEVEL=spec["loggingLevel"],
        PYTHONUNBUFFERED="1",
    )
    names, azure = [], {"AZUREML_BI_OUTPUT_PATH": output, "AZUREML_RUN_ID": AZURE_RUN_ID}
    for side in spec.get("sideInputs") or []:
        name, uri = side["name"], side["uri"]
        var = SideInput(name, uri).env_name
        env[var] = (side_input_paths or {}).get(name) or local_root(uri) or uri
        names.append(f"{name}={var}")
        if name == AZURE_MODEL_INPUT:
            azure["AZUREML_MODEL_DIR"] = env[var]
    env["PRS_SIDE_INPUT_NAMES"] = ",".join(names)
    # The names Azure's runtime gives these, for scripts written for it; the step's env wins.
    given = {item["name"] for item in spec["env"]}
    env.update({name: value for name, value in azure.items() if name not in given})
    gpu = gpu_for_process(visible_gpus(env, _dev_names()), process)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


def _dev_names() -> list[str]:
    try:
        return os.listdir("/dev")  # noqa: TID251 (device names, not user data)
    except OSError:
        return []
