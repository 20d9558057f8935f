"""Azure SDK v1 `ParallelRunConfig` + `ParallelRunStep` keyword arguments, as a parallel job.

A v1 step is Python code; `prs convert` reads no code, so the v1 side is a small YAML or JSON
file of the keyword arguments (docs/migration.md, "From the v1 SDK"):

    name: predict-digits                 # ParallelRunStep(name=...)
    entry_script: score.py               # ParallelRunConfig(...) keywords, as written in Python
    source_directory: ./src
    output_action: append_row
    mini_batch_size: "10"
    inputs: [{name: digits, type: file, path: ./data/digits}]     # file | tabular
    side_inputs: [{name: model, path: ./models}]
    output: ./out/predict-digits         # where the PipelineData / OutputFileDatasetConfig went
    arguments: ["--model", "./models"]

Most keywords have a v2 parallel job counterpart, so this module translates the file into a
v2 job (converted by azure_conversion like any other) plus the spec fields v2 has no key for
(run_max_try counts tries as the step does; allowed_failed_count has no v2 field).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prs_runner.step.azure_job_sections import AzureConversionError

# Both keywords are required by ParallelRunConfig and neither exists in a v2 parallel job.
V1_MARKERS = ("entry_script", "output_action")
V2_KEYS = {  # v1 keyword -> v2 parallel job key (dotted: nested)
    "name": "name",
    "description": "description",
    "compute_target": "compute",
    "mini_batch_size": "mini_batch_size",
    "partition_keys": "partition_keys",
    "node_count": "resources.instance_count",
    "process_count_per_node": "max_concurrency_per_instance",
    "environment_variables": "environment_variables",
    "source_directory": "task.code",
    "entry_script": "task.entry_script",
    "environment": "task.environment",
    "logging_level": "logging_level",  # ERROR and CRITICAL become WARNING, as in v2
}
SPEC_FIELDS = {  # v1 keyword -> step field, copied as written
    "error_threshold": "errorThreshold",
    "allowed_failed_count": "miniBatchErrorThreshold",
    "allowed_failed_percent": "allowedFailedPercent",
    "run_invocation_timeout": "runInvocationTimeout",
    "run_max_try": "runMaxTry",
    "append_row_file_name": "appendRowFileName",
    "allow_reuse": "allowReuse",
}
HANDLED = {*V2_KEYS, *SPEC_FIELDS, "inputs", "output", "side_inputs", "arguments",
           "output_action"}
FILE_TYPES = {"file", "files", "filedataset", "uri_folder"}  # uri_file stays: a file's folder
TABULAR_TYPES = {"tabular", "tabulardataset", "mltable"}


@dataclass
class V1Translation:
    job: dict[str, Any]  # a v2 parallel job
    fields: dict[str, Any] = field(default_factory=dict)  # step fields set as they are
    notes: list[tuple[str, str]] = field(default_factory=list)  # (step field or "", text)


def is_v1_config(data: Mapping[str, Any]) -> bool:
    return all(key in data for key in V1_MARKERS) and "type" not in data


def translate_v1(config: Mapping[str, Any]) -> V1Translation:
    job: dict[str, Any] = {"type": "parallel", "task": {"type": "run_function"}}
    result = V1Translation(job)
    for key, target in V2_KEYS.items():
        if config.get(key) is not None:
            set_dotted(job, target, config[key])
    for key, target in SPEC_FIELDS.items():
        if config.get(key) is not None:
            result.fields[target] = config[key]
    translate_inputs(config.get("inputs"), config.get("partition_keys"), result)
    translate_output(config, result)
    side_inputs = [side_input(item, index) for index, item in
                   enumerate(as_list(config.get("side_inputs")))]
    if side_inputs:
        result.fields["sideInputs"] = side_inputs
    arguments = config.get("arguments")
    if isinstance(arguments, str):  # the SDK takes a list; one string is split as a shell would
        try:
            result.fields["arguments"] = shlex.split(arguments)
        except ValueError as error:  # an unclosed quote
            raise AzureConversionError(f"arguments: {error} in {arguments!r}") from None
        result.notes.append(("arguments", "arguments: one string, split into words as a shell "
                                          "would (ParallelRunStep takes a list)"))
    elif arguments is not None:
        result.fields["arguments"] = [str(item) for item in as_list(arguments)]
    result.notes += [("", f"{key}: not a ParallelRunConfig or ParallelRunStep keyword this "
                          "converter knows; dropped") for key in config if key not in HANDLED]
    return result


def translate_inputs(inputs: Any, partition_keys: Any, result: V1Translation) -> None:
    """ParallelRunStep takes a list of datasets; a step reads one input."""
    items = as_list(inputs)
    if not items:
        return
    default_type = "tabular" if partition_keys else "file"
    named = [dataset(item, index, default_type) for index, item in enumerate(items)]
    result.job["inputs"] = {named[0][0]: named[0][1]}
    result.job["input_data"] = "${{inputs." + named[0][0] + "}}"
    for name, _ in named[1:]:
        result.notes.append(("input", f"inputs: {name!r} is not converted: a step reads one "
                                      "input; put the datasets under one folder or prefix, "
                                      "or run one step per dataset"))


def dataset(item: Any, index: int, default_type: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(item, Mapping):
        return f"input{index}", {"type": azure_type(default_type), "path": str(item)}
    kind = str(item.get("type") or default_type)
    path = item.get("path") or item.get("uri")
    return str(item.get("name") or f"input{index}"), {"type": azure_type(kind), "path": path}


def azure_type(kind: str) -> str:
    lowered = kind.lower()
    if lowered in TABULAR_TYPES:
        return "mltable"
    return "uri_folder" if lowered in FILE_TYPES else kind


def translate_output(config: Mapping[str, Any], result: V1Translation) -> None:
    output = config.get("output")
    path = output.get("path") or output.get("uri") if isinstance(output, Mapping) else output
    result.job["outputs"] = {"output": {"type": "uri_folder", "path": path}}
    if config["output_action"] == "append_row":
        result.job["task"]["append_row_to"] = "${{outputs.output}}"
    elif config["output_action"] != "summary_only":
        result.notes.append(("outputAction", f"output_action: {config['output_action']!r} is "
                                             "neither append_row nor summary_only; "
                                             "summary_only is written"))


def side_input(item: Any, index: int) -> dict[str, Any]:
    if isinstance(item, Mapping):
        return {"name": str(item.get("name") or f"side{index}"),
                "uri": item.get("path") or item.get("uri")}
    return {"name": f"side{index}", "uri": str(item)}


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def set_dotted(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value
