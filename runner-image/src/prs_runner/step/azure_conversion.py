"""`prs convert`: an Azure ML parallel job (CLI v2 YAML) or a v1 ParallelRunConfig file as a
ParallelRunStep, with a comment for every Azure setting that has no equivalent here.

Pure (plain data in, (document, notes) out) except `convert_azure_file`, which reads the file.
What maps to what, and why, is docs/migration.md; the v2 keys are those of Azure's
reference-yaml-job-parallel page.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from prs_runner.step.azure_job_sections import (
    AzureConversionError,
    Notes,
    code_section,
    input_data_name,
    input_section,
    mapping,
    output_section,
    program_arguments,
    scalar_fields,
    section,
    shown,
    step_name,
    task_image,
)
from prs_runner.step.azure_v1_conversion import is_v1_config, translate_v1
from prs_runner.step.spec import API_VERSION, KIND
from prs_runner.step.yaml_values import load_yaml

TOP_LEVEL_NOTES = {  # keys with no equivalent -> what to use instead
    "compute": "the step runs where Kubernetes schedules its pods; place them with "
               "spec.podTemplate.nodeSelector / tolerations and size them with spec.resources",
    "identity": "pods act as their service account: spec.podTemplate.serviceAccountName, or "
                "storage credentials in spec.podTemplate.env / envFrom (docs/object-storage.md)",
    "services": "no interactive services on the step's pods",
    "properties": "Azure's own run properties; dropped",
}
COMMENT_WIDTH = 96
TAG_PREFIX = "parallelrun.io/azure-tag."
# What may follow TAG_PREFIX: an annotation key's name part ("azure-tag.KEY") is at most 63
# characters, letters, digits, '-', '_' and '.', ending with a letter or digit.
TAG_KEY = re.compile(r"[-A-Za-z0-9_.]{0,52}[A-Za-z0-9]")
SILENT = {"$schema", "type", "name", "display_name", "description", "tags", "experiment_name",
          "inputs",
          "outputs", "input_data", "task", "mini_batch_size", "partition_keys", "resources",
          "max_concurrency_per_instance", "retry_settings", "logging_level", "error_threshold",
          "mini_batch_error_threshold", "environment_variables", "is_deterministic"}

@dataclass
class Conversion:
    document: dict[str, Any]
    notes: Notes


@dataclass
class ConvertedFile:
    text: str  # the step YAML with its comments
    document: dict[str, Any]
    problems: list[str]  # prs validate's, one line each; empty when the step is valid


def convert_azure_file(path: str | Path) -> ConvertedFile:
    from prs_runner.step.validation import validate_document

    path = Path(path)
    data = read_azure_file(path)
    try:
        conversion = convert_azure(data, fallback_name=path.stem)
    except AzureConversionError as error:
        raise AzureConversionError(f"{path}: {error}") from None
    text = render_step(conversion.document, conversion.notes.by_field, source=path.name)
    return ConvertedFile(text, conversion.document, validate_document(conversion.document))


def read_azure_file(path: Path) -> Any:
    try:
        return load_yaml(path.read_text())  # no aliases: a "billion laughs" file is refused
    except FileNotFoundError:
        raise AzureConversionError(f"{path}: no such file") from None
    except (IsADirectoryError, UnicodeDecodeError):
        raise AzureConversionError(f"{path}: not a YAML or JSON text file; give the "
                                   "parallel job's .yml file") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise AzureConversionError(f"{path}:{where} not valid YAML: {problem}") from None


def convert_azure(data: Any, fallback_name: str = "") -> Conversion:
    """A v2 parallel job, a pipeline holding one, or a v1 ParallelRunConfig mapping."""
    if not isinstance(data, Mapping):
        raise AzureConversionError("expected a mapping (an Azure ML parallel job or a "
                                   f"ParallelRunConfig file), got {type(data).__name__}")
    if is_v1_config(data):
        translation = translate_v1(data)
        conversion = convert_job(translation.job, fallback_name)
        conversion.document["spec"].update(translation.fields)
        for where, text in translation.notes:
            conversion.notes.add(where, text)
        return conversion
    if data.get("type") == "pipeline":
        return convert_pipeline(data, fallback_name)
    if data.get("type") != "parallel":
        raise AzureConversionError(
            f"not a parallel job (type: {data.get('type')!r}); prs convert reads a job with "
            "type: parallel, a pipeline holding one, or a ParallelRunConfig file "
            "(entry_script and output_action)")
    return convert_job(data, fallback_name)


PIPELINE_KEYS = {"$schema", "type", "jobs", "inputs", "outputs", "settings", "name",
                 "display_name", "description", "experiment_name", "tags"}
PARENT = re.compile(r"\$\{\{\s*parent\.(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def convert_pipeline(pipeline: Mapping[str, Any], fallback_name: str) -> Conversion:
    jobs = section(pipeline, "jobs")
    parallel = [key for key, job in jobs.items()
                if isinstance(job, Mapping) and job.get("type") == "parallel"]
    components = [key for key, job in jobs.items() if isinstance(job, Mapping)
                  and "component" in job and key not in parallel]
    if not parallel and len(components) == 1:
        parallel = components
    if len(parallel) != 1:
        found = ", ".join(parallel) or "none"
        raise AzureConversionError(f"a pipeline with {len(parallel)} parallel jobs ({found}); "
                                   "prs convert takes one: copy it into a file of its own")
    job = jobs[parallel[0]]
    if "component" in job:
        raise AzureConversionError(f"jobs.{parallel[0]} is defined in its component "
                                   f"({job['component']}); convert that file")
    described = {k: pipeline[k] for k in ("description", "experiment_name", "tags")
                 if k in pipeline}  # the pipeline's, when the job has none of its own
    job = {**described, **job, **parent_bindings(job, pipeline)}
    conversion = convert_job(job, parallel[0] or fallback_name)
    others = [key for key in jobs if key != parallel[0]]
    if others:
        conversion.notes.add("", f"the pipeline's other jobs ({', '.join(others)}) are not "
                                 "converted: run them before this step, and give their "
                                 "outputs' locations to its inputs")
    pipeline_settings(pipeline, conversion)
    return conversion


def parent_bindings(job: Mapping[str, Any], pipeline: Mapping[str, Any]) -> dict[str, Any]:
    """The job's inputs and outputs with each `${{parent.inputs.X}}` (the usual pipeline
    shape) replaced by the pipeline's own X; one the pipeline lacks stays as written."""
    replaced: dict[str, Any] = {}
    for kind in ("inputs", "outputs"):
        given, parents = section(job, kind), section(pipeline, kind)
        if not given:
            continue
        items = dict(given)
        for name, value in given.items():
            found = PARENT.fullmatch(value.strip()) if isinstance(value, str) else None
            if found and found[1] == kind and found[2] in parents:
                items[name] = parents[found[2]]
        replaced[kind] = items
    return replaced


def pipeline_settings(pipeline: Mapping[str, Any], conversion: Conversion) -> None:
    """The pipeline's settings the step can honour, and a note for each it cannot."""
    settings = section(pipeline, "settings")
    for key, value in settings.items():
        if key == "force_rerun" and value is True:
            conversion.document["spec"]["allowReuse"] = False
            conversion.notes.add("allowReuse", "settings.force_rerun: true: the step runs "
                                               "again instead of reusing its last result")
        elif key != "force_rerun":
            conversion.notes.add("", f"settings.{key}: {shown(value)}: a pipeline setting; no "
                                     "equivalent for one step")
    for key in pipeline:
        if key not in PIPELINE_KEYS:
            conversion.notes.add("", f"the pipeline's {key}: {shown(pipeline[key])}: no "
                                     "equivalent: " + TOP_LEVEL_NOTES.get(
                                         key, "not a pipeline key this converter knows; "
                                              "dropped"))


def convert_job(job: Mapping[str, Any], fallback_name: str) -> Conversion:
    notes = Notes()
    task = section(job, "task")
    inputs = section(job, "inputs")
    outputs = section(job, "outputs")
    name, metadata = step_metadata(job, fallback_name, notes)
    spec: dict[str, Any] = {"code": code_section(task, notes)}
    image = task_image(task.get("environment"), notes)
    if image:
        spec["image"] = image
    main_input = input_data_name(job.get("input_data"), inputs)
    spec["input"] = input_section(main_input, inputs[main_input], job, notes)
    spec.update(output_section(outputs, task.get("append_row_to"), name, notes))
    arguments, side_inputs = program_arguments(task.get("program_arguments"), inputs,
                                               main_input, notes)
    if side_inputs:
        spec["sideInputs"] = side_inputs
    spec.update(scalar_fields(job, notes))
    if arguments:
        spec["arguments"] = arguments
    env = section(job, "environment_variables")
    if env:
        spec["env"] = [{"name": str(key), "value": env_value(key, value)}
                       for key, value in env.items()]
    if job.get("is_deterministic") is False:
        spec["allowReuse"] = False
        notes.add("allowReuse", "is_deterministic: false: a step with the same inputs and "
                                "settings runs again instead of reusing its last result")
    for key in job:
        if key not in SILENT:
            notes.add("", f"{key}: {shown(job[key])}: no equivalent: "
                          + TOP_LEVEL_NOTES.get(key, "not a parallel job key this converter "
                                                     "knows; dropped"))
    return Conversion({"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata,
                       "spec": spec}, notes)


def env_value(name: Any, value: Any) -> str:
    """An environment value as Azure sets it: text, true/false, numbers as written."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None or isinstance(value, Mapping | list):
        raise AzureConversionError(f"environment_variables.{name}: {shown(value)}: expected a "
                                   "string, a number or true/false")
    return str(value)


def step_metadata(job: Mapping[str, Any], fallback: str,
                  notes: Notes) -> tuple[str, dict[str, Any]]:
    written = str(job.get("name") or job.get("display_name") or fallback)
    name = step_name(written)
    if name is None:
        notes.add("metadata", f"name: {written!r} cannot be made a DNS-1123 label of 3-48 "
                              "characters (lower-case letters, digits, '-'); choose one")
        name = written
    annotations = {}
    if job.get("display_name") and job.get("display_name") != name:
        annotations["parallelrun.io/azure-display-name"] = str(job["display_name"])
    if job.get("description"):
        annotations["parallelrun.io/description"] = str(job["description"])
    if job.get("experiment_name"):
        annotations["parallelrun.io/azure-experiment"] = str(job["experiment_name"])
    for key, value in mapping(job.get("tags")).items():
        # Annotation values take any text; a tag key must fit the annotation's key syntax.
        if TAG_KEY.fullmatch(str(key)):
            annotations[f"{TAG_PREFIX}{key}"] = str(value)
        else:
            notes.add("metadata", f"tags.{key}: {shown(value)}: the key cannot be part of an "
                                  "annotation key (letters, digits, '-', '_', '.'); dropped")
    metadata: dict[str, Any] = {"name": name}
    if annotations:
        metadata["annotations"] = annotations
    return name, metadata




def render_step(document: Mapping[str, Any], notes: Mapping[str, list[str]], source: str) -> str:
    """The step as YAML, each note a comment above the field it concerns; notes about no
    field (settings dropped) head the file."""
    lines = [f"# Converted by `prs convert` from {source}."]
    lines += comment_lines(notes.get("", []), "")
    head = {key: document[key] for key in ("apiVersion", "kind", "metadata")}
    lines += comment_lines(notes.get("metadata", []), "", after="metadata")
    lines.append(dump(head).rstrip("\n"))
    lines.append("spec:")
    placed = {"", "metadata"}
    for key, value in document["spec"].items():
        lines += comment_lines(notes.get(key, []), "  ")
        lines += ["  " + line for line in dump({key: value}).splitlines()]
        placed.add(key)
    for key in notes:  # about fields the step leaves at their defaults
        if key not in placed:
            lines += comment_lines(notes[key], "  ", after=key)
    return "\n".join(lines) + "\n"


def comment_lines(texts: list[str], indent: str, after: str = "") -> list[str]:
    width = COMMENT_WIDTH - len(indent)
    lines = []
    for text in texts:
        wrapped = textwrap.wrap(f"{after}: {text}" if after else text, width - 2) or [""]
        lines += [f"{indent}# {wrapped[0]}", *(f"{indent}#   {line}" for line in wrapped[1:])]
    return lines


def dump(value: Mapping[str, Any]) -> str:
    """Mappings of scalars inline (`code: {entryScript: ..., sourceDirectory: ...}`, as the
    README writes steps), scalars and lists of words (arguments) one per line."""
    leaves = all(not isinstance(item, Mapping | list) or is_word_list(item)
                 for item in value.values())
    return yaml.safe_dump(dict(value), sort_keys=False, default_flow_style=False if leaves
                          else None, allow_unicode=True, width=COMMENT_WIDTH)


def is_word_list(value: Any) -> bool:
    return isinstance(value, list) and all(not isinstance(item, Mapping | list)
                                           for item in value)
