"""The sections of a v2 parallel job, each as the step fields it becomes (azure_conversion
puts them together). Every Azure value without an equivalent leaves a note for the comment
above the field it concerns; docs/migration.md lists them all.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from prs_runner.step.spec import NAME_PATTERN

REFERENCE = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)  # $[[--lr ${{inputs.lr}}]]
SIZE = re.compile(r"([0-9]+)\s*([kmg]b)?", re.IGNORECASE)
# Storage the runner reads as written; Azure's wasb(s) names the same blobs as abfs(s).
PASSED_SCHEMES = ("s3", "gs", "az", "abfs", "abfss", "file", "pvc")
AZURE_CURATED_IMAGES = "mcr.microsoft.com/azureml/"
NAME_LENGTH = (3, 48)

class AzureConversionError(ValueError):
    """The Azure file cannot be read or is not a parallel job: one line, naming what to do."""


@dataclass
class Notes:
    """Comments for the written step, by the spec field they sit above ("" for the header)."""

    by_field: dict[str, list[str]] = field(default_factory=dict)

    def add(self, where: str, text: str) -> None:
        self.by_field.setdefault(where, []).append(text)

def shown(value: Any) -> str:
    """An Azure value as a comment quotes it: scalars as written, collections inline."""
    if isinstance(value, Mapping | list):
        return str(yaml.safe_dump(value, default_flow_style=True, width=10_000)).strip()
    return str(value).lower() if isinstance(value, bool) else str(value)  # as YAML writes it


def section(job: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """JOB's section KEY ({} when absent); a section of another type is refused, since
    dropping it would drop settings (Azure refuses it too)."""
    value = job.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AzureConversionError(f"{key}: expected a mapping (NAME: value), got "
                                   f"{type(value).__name__} {shown(value)[:80]}")
    return value


def mapping(value: Any) -> Mapping[str, Any]:
    """VALUE when it is a mapping, else an empty one: a missing or mistyped section reads as
    absent, and the validator names what the step then lacks."""
    return value if isinstance(value, Mapping) else {}


def step_name(text: str) -> str | None:
    """TEXT as a DNS-1123 label of 3-48 characters, or None when nothing of it is left."""
    label = re.sub(r"[^a-z0-9-]", "", re.sub(r"[_\s.]+", "-", text.lower()))
    label = re.sub(r"-{2,}", "-", label).lstrip("-0123456789")[: NAME_LENGTH[1]].rstrip("-")
    fits = NAME_PATTERN.fullmatch(label) and NAME_LENGTH[0] <= len(label)
    return label if fits else None


def code_section(task: Mapping[str, Any], notes: Notes) -> dict[str, Any]:
    if task.get("type", "run_function") != "run_function":
        notes.add("code", f"task.type: {task['type']!r}: only run_function (an entry script "
                          "with init() and run()) exists here")
    code = str(task.get("code") or ".")
    if code.startswith("azureml:") or "://" in code:
        notes.add("code", f"task.code: {code}: the code must be a local folder here (prs "
                          "submit packs it); download it and give its path")
    return {"entryScript": task.get("entry_script"), "sourceDirectory": code}


def task_image(environment: Any, notes: Notes) -> str | None:
    image = environment.get("image") if isinstance(environment, Mapping) else None
    extras = [k for k in ("conda_file", "build") if isinstance(environment, Mapping)
              and environment.get(k)]
    if isinstance(image, str) and not extras and not image.startswith(AZURE_CURATED_IMAGES):
        notes.add("image", "the image must hold the runner: build it FROM the runner image "
                           "(README, Images)")
        return image
    notes.add("image", f"task.environment: {shown(environment)}: the pods run the runner image "
                       "(spec.image empty: the operator's default); put the script's packages "
                       "into an image built FROM the runner image (README, Images) and name it "
                       "in spec.image; `prs run` uses this machine's Python")
    return None


def input_data_name(input_data: Any, inputs: Mapping[str, Any]) -> str:
    match = REFERENCE.fullmatch(str(input_data or "").strip())
    if match is None or match[1] != "inputs":
        raise AzureConversionError(f"input_data: {input_data!r}: expected "
                                   "${{inputs.NAME}} naming one of the job's inputs")
    if not isinstance(inputs.get(match[2]), Mapping):
        raise AzureConversionError(f"input_data names inputs.{match[2]}, which is not a "
                                   "data input (type and path) of the job")
    return match[2]


def input_section(name: str, data: Mapping[str, Any], job: Mapping[str, Any],
                  notes: Notes) -> dict[str, Any]:
    kind = data.get("type", "uri_folder")
    uri = location(data.get("path"), f"inputs.{name}", "input", notes)
    section: dict[str, Any] = {"type": "tabular" if kind == "mltable" else "files", "uri": uri}
    if kind == "mltable":
        notes.add("input", "tabular: an MLTable file at the top of uri is read (its paths "
                           "and read_delimited, read_parquet or read_json_lines; other "
                           "transformations are refused); without one, the csv, parquet or "
                           "jsonl files under uri are read")
    elif kind == "uri_file" and file_location(uri):
        section.update(file_location(uri))
    elif kind != "uri_folder":
        notes.add("input", f"inputs.{name}.type: {kind!r}: read as a folder of files")
    keys = job.get("partition_keys")
    if keys:
        section["partitionKeys"] = [str(k) for k in keys] if isinstance(keys, list) else keys
    if data.get("mode") == "direct" and kind != "mltable":
        notes.add("input", "mode direct: run() gets local paths here (objects are "
                           "downloaded), not storage URLs")
    return section


def file_location(uri: str) -> dict[str, str]:
    """A file's URI as its folder and its name (a glob matching it), or {} for a bucket or an
    asset that names no folder."""
    scheme, separator, rest = uri.rpartition("://")
    folder, slash, name = rest.rpartition("/")
    if not name or (separator and not folder):
        return {}
    return {"uri": scheme + separator + (folder or slash or "."), "glob": name}


def location(path: Any, what: str, where: str, notes: Notes) -> str:
    """A local path or a URI the runner reads; anything else a placeholder that fails
    `prs validate` (a local-looking placeholder would pass it and fail at run time)."""
    text = str(path or "")
    scheme = text.partition("://")[0] if "://" in text else ""
    if text and not scheme and not text.startswith(("azureml:", "${{")):
        return text
    if scheme in PASSED_SCHEMES:
        return text
    if scheme in ("wasb", "wasbs"):
        notes.add(where, f"{what}: {text} is read as abfss:// (the same blob)")
        return "abfss://" + text.partition("://")[2]
    placeholder = text if scheme else "azureml://" + re.sub(
        r"^azureml:|^\$\{\{\s*|\s*\}\}$", "", text).strip("/")
    if not text:
        placeholder = f"azureml://{what}"
    notes.add(where, f"{what}: {text or 'no path'}: an Azure data asset or datastore has no "
                     "equivalent; give a local path or an s3://, gs:// or az:// URI")
    return placeholder


def output_section(outputs: Any, append_row_to: Any, name: str,
                   notes: Notes) -> dict[str, Any]:
    outputs = mapping(outputs)
    match = REFERENCE.fullmatch(str(append_row_to or "").strip())
    appended = match is not None and match[1] == "outputs" and match[2] in outputs
    chosen = match[2] if match is not None and appended else next(iter(outputs), "")
    if append_row_to and not appended:  # Azure refuses the job: results would be lost
        names = ", ".join(outputs) or "none"
        raise AzureConversionError(f"task.append_row_to: {append_row_to} names none of the "
                                   f"job's outputs ({names}); write ${{{{outputs.NAME}}}} of "
                                   "one of them, or leave it out for summary_only")
    if not appended:
        notes.add("outputAction", "no task.append_row_to: run() results are not collected "
                                  "(summary_only, as on Azure); the script writes its own files "
                                  "to context.output_dir")
    chosen_output = outputs.get(chosen)  # a bare string is the output's path
    data = {"path": chosen_output} if isinstance(chosen_output, str) else mapping(chosen_output)
    path = written = str(data.get("path") or "")
    azure_chosen = not written or written.startswith(("azureml:", "${{"))
    fields: dict[str, Any] = {"outputAction": "append_row" if appended else "summary_only"}
    if data.get("type") == "uri_file" and ("/" in written or not azure_chosen):
        path, _, file_name = written.rpartition("/")
        path = path or "."  # a file name alone: the file is in the working directory
        if appended:
            fields["appendRowFileName"] = file_name
    if azure_chosen:
        origin = (f"{written}: an Azure datastore or binding" if written
                  else "no path: Azure chose the location")
        notes.add("output", f"outputs.{chosen or 'output'}: {origin}; written to a local folder "
                            "here: change it to the path or s3://, gs:// or az:// URI that should "
                            "hold the result")
        path = f"./out/{name}"
    return {"output": {"uri": location(path, f"outputs.{chosen}", "output", notes)}, **fields}


def program_arguments(text: Any, inputs: Mapping[str, Any], main_input: str,
                      notes: Notes) -> tuple[list[str], list[dict[str, str]]]:
    """program_arguments split as a shell would; ${{inputs.X}} of a literal becomes its value;
    of a data input it stays, naming the side input X (the worker puts its local path in, as
    Azure puts in its mount), and ${{outputs.X}} stays (the worker's output folder)."""
    if isinstance(text, str):  # `${{ inputs.x }}` is one word, as Azure reads it
        text = optional_arguments(text, inputs, notes)
        try:
            words = shlex.split(REFERENCE.sub(lambda found: f"${{{{{found[1]}.{found[2]}}}}}",
                                              text))
        except ValueError as error:  # an unclosed quote
            raise AzureConversionError(f"task.program_arguments: {error} in {text!r}") from None
    elif isinstance(text, list) and all(isinstance(w, str | int | float) for w in text):
        words = [optional_arguments(str(w), inputs, notes) for w in text]
        words = [w for w in words if w.strip()]
    elif text is None:
        words = []
    else:
        raise AzureConversionError(f"task.program_arguments: {text!r}: expected one string (or "
                                   "a list of strings)")
    side_inputs: dict[str, dict[str, str]] = {}

    def replace(match: re.Match[str]) -> str:
        kind, name = match[1], match[2]
        value = inputs.get(name)
        if kind == "outputs":
            return f"${{{{outputs.{name}}}}}"
        if name == main_input:
            return "${{input}}"
        if isinstance(value, Mapping) and "path" in value:
            side_inputs.setdefault(name, {"name": name, "uri": location(
                value["path"], f"inputs.{name}", "sideInputs", notes)})
            return f"${{{{inputs.{name}}}}}"
        if isinstance(value, Mapping):
            value = value.get("default", value.get("value"))
        if value is None:
            what = "an input without a value" if name in inputs else "no such input"
            notes.add("arguments", f"{match[0]}: {what}; left as written")
            return match[0]
        return str(value).lower() if isinstance(value, bool) else str(value)

    arguments = [REFERENCE.sub(replace, word) for word in words]
    if any(found[2] == main_input for word in words for found in REFERENCE.finditer(word)):
        notes.add("arguments", f"${{{{inputs.{main_input}}}}}, the input data, becomes "
                               "${{input}}: the step's input as the workers see it (its local "
                               "folder or file, its URI on object storage)")
    if side_inputs:
        notes.add("sideInputs", "inputs the arguments name: each ${{inputs.NAME}} in arguments "
                                "becomes the side input's local path when the worker starts "
                                "(also in PRS_SIDE_INPUT_<NAME> and context.side_inputs[name])")
    if any(found[1] == "outputs" for word in words for found in REFERENCE.finditer(word)):
        notes.add("arguments", "${{outputs.X}} becomes the worker's output folder (PRS_OUTPUT_DIR, "
                               "a local folder also when output.uri is on object storage)")
    unused = [key for key, value in inputs.items() if isinstance(value, Mapping)
              and "path" in value and key != main_input and key not in side_inputs]
    for key in unused:
        notes.add("sideInputs", f"inputs.{key}: not named in program_arguments, so the "
                                "script could not reach it on Azure; not converted")
    return arguments, list(side_inputs.values())


def optional_arguments(text: str, inputs: Mapping[str, Any], notes: Notes) -> str:
    """TEXT with each `$[[...]]` block (Azure's optional arguments) kept, without its
    brackets, when every input it names has a value, and left out when one has none, as
    Azure leaves it out of the command."""

    def block(match: re.Match[str]) -> str:
        missing = [name for kind, name in REFERENCE.findall(match[1])
                   if kind == "inputs" and not has_value(inputs.get(name))]
        if missing:
            notes.add("arguments", f"{' '.join(match[0].split())}: inputs.{missing[0]} has no "
                                   "value, so the optional argument is left out, as on Azure")
            return " "
        return match[1]

    return OPTIONAL.sub(block, text)


def has_value(value: Any) -> bool:
    """Whether an Azure input gives something: data (a path), a literal or a default."""
    if isinstance(value, Mapping):
        return any(value.get(key) is not None for key in ("path", "default", "value"))
    return value is not None


def scalar_fields(job: Mapping[str, Any], notes: Notes) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    size = job.get("mini_batch_size")
    if size is not None:
        fields["miniBatchSize"] = mini_batch_size(size)
    resources = section(job, "resources")
    for key, target in (("instance_count", "nodeCount"),):
        if resources.get(key) is not None:
            fields[target] = resources[key]
    for key in resources:
        if key != "instance_count":
            notes.add("resources", f"resources.{key}: {shown(resources[key])}: no equivalent: "
                                   "set spec.resources (cpu, memory, nvidia.com/gpu) and "
                                   "spec.podTemplate.nodeSelector for the node type")
    for key, target in (("max_concurrency_per_instance", "processCountPerNode"),
                        ("error_threshold", "errorThreshold"),
                        ("mini_batch_error_threshold", "miniBatchErrorThreshold")):
        if job.get(key) is not None:
            fields[target] = job[key]
    if job.get("max_concurrency_per_instance") is None:
        notes.add("processCountPerNode", "max_concurrency_per_instance not set: Azure runs one "
                                         "process per core (1 on GPU nodes); the step runs one "
                                         "per CPU the pod may use: set it for GPU nodes")
    if job.get("logging_level") is not None:
        fields["loggingLevel"] = logging_level(job["logging_level"], notes)
    retry = section(job, "retry_settings")
    if isinstance(retry.get("max_retries"), int) and not isinstance(retry["max_retries"], bool):
        fields["runMaxTry"] = retry["max_retries"] + 1
        notes.add("runMaxTry", f"retry_settings.max_retries {retry['max_retries']} + 1: Azure "
                               "counts retries, runMaxTry counts tries (the first included)")
    elif retry.get("max_retries") is not None:
        notes.add("runMaxTry", f"retry_settings.max_retries: {retry['max_retries']!r} is not "
                               "a number; set runMaxTry (tries, the first included)")
    if retry.get("timeout") is not None:
        fields["runInvocationTimeout"] = retry["timeout"]
    return fields


def mini_batch_size(value: Any) -> str:
    """Azure writes "10", "10kb", "100 mb"; the step's units are upper-case, without a space."""
    match = SIZE.fullmatch(str(value).strip())
    if match is None:
        return str(value)  # prs validate names the field and the forms it takes
    return match[1] + (match[2] or "").upper()


def logging_level(value: Any, notes: Notes) -> str:
    level = str(value).upper()
    if level in ("ERROR", "CRITICAL"):
        notes.add("loggingLevel", f"logging_level {value}: the step's quietest level is "
                                  "WARNING")
        return "WARNING"
    return level
