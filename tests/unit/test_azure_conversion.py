"""`prs convert`: Azure ML parallel jobs (CLI v2) and ParallelRunConfig files (SDK v1) as steps.

The job texts below are written in the shapes of Azure's cli/jobs/parallel examples (a files
job with a model input and append_row_to, a tabular mltable job with partition_keys), with
local paths so that the converted step validates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from prs_runner.step.azure_conversion import (
    comment_lines,
    convert_azure,
    convert_azure_file,
    dump,
    is_word_list,
    render_step,
)
from prs_runner.step.azure_job_sections import (
    AzureConversionError,
    Notes,
    code_section,
    has_value,
    input_data_name,
    input_section,
    location,
    logging_level,
    mapping,
    mini_batch_size,
    output_section,
    program_arguments,
    scalar_fields,
    section,
    shown,
    step_name,
    task_image,
)
from prs_runner.step.azure_v1_conversion import is_v1_config, translate_v1
from prs_runner.step.validation import step_from_document

FILES_JOB = """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
type: pipeline
display_name: mnist-batch-identification
experiment_name: digits-experiment
jobs:
  prepare_data:
    type: command
    component: ./script/prepare_data.yml
  predict_digits_mnist:
    type: parallel
    compute: azureml:cpu-cluster
    inputs:
      job_data_path: {type: uri_folder, path: ./data/mnist, mode: ro_mount}
      score_model: {type: uri_folder, path: ./mnist_models, mode: download}
    outputs:
      job_output_file:
        type: uri_file
        path: ./results/aggregated_returns.csv
        mode: rw_mount
    mini_batch_size: "5"
    resources: {instance_count: 2}
    mini_batch_error_threshold: 5
    logging_level: "DEBUG"
    input_data: ${{inputs.job_data_path}}
    max_concurrency_per_instance: 2
    retry_settings: {max_retries: 2, timeout: 60}
    environment_variables: {"AZUREML_PARALLEL_EXAMPLE": "3a_yaml", "BATCH": 8}
    task:
      type: run_function
      code: ./script
      entry_script: digit_identification.py
      environment: {image: registry.example/digits:1}
      program_arguments: >-
        --model ${{inputs.score_model}}
        --allowed_failed_percent 30
        --task_overhead_timeout 1200
      append_row_to: ${{outputs.job_output_file}}
"""

TABULAR_JOB = """\
type: parallel
name: oj_sales_Train
inputs:
  data_source: {type: mltable, path: ./oj_sales_data, mode: direct}
  drop_cols: "Revenue,Advert,Store,Brand"
  target_col: Quantity
outputs:
  model_folder: {type: uri_folder, mode: rw_mount}
partition_keys: [Store, Brand]
resources: {instance_count: 2, instance_type: Standard_D4_v2}
error_threshold: -1
mini_batch_error_threshold: 5
input_data: ${{inputs.data_source}}
max_concurrency_per_instance: 2
retry_settings: {max_retries: 2, timeout: 60}
task:
  type: run_function
  code: ./src/parallel_train
  entry_script: parallel_train.py
  environment:
    image: mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04
    conda_file: ./src/parallel_train/conda.yml
  program_arguments: >-
    --drop_cols ${{inputs.drop_cols}}
    --target_col ${{inputs.target_col}}
    --model_folder ${{outputs.model_folder}}
"""


def short_id(value: Any) -> str:
    """A test id from a case's value: short, one line, and without brackets (mutmut passes
    ids back to pytest, which cannot find one holding `[` or a line break)."""
    return re.sub(r"[\[\]\s]+", " ", str(value))[:40]


def base_job(**changes: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "type": "parallel", "name": "score-job",
        "inputs": {"data": {"type": "uri_folder", "path": "./data"}},
        "input_data": "${{inputs.data}}",
        "outputs": {"result": {"type": "uri_folder", "path": "./out/result"}},
        "task": {"code": "./src", "entry_script": "score.py",
                 "append_row_to": "${{outputs.result}}"},
    }
    job.update(changes)
    return job


def all_notes(notes: dict[str, list[str]]) -> str:
    return "\n".join(text for texts in notes.values() for text in texts)


@pytest.mark.parametrize(("changes", "field", "expected"), [
    ({"mini_batch_size": "10"}, "miniBatchSize", "10"),
    ({"mini_batch_size": 25}, "miniBatchSize", "25"),
    ({"resources": {"instance_count": 4}}, "nodeCount", 4),
    ({"max_concurrency_per_instance": 3}, "processCountPerNode", 3),
    ({"retry_settings": {"max_retries": 4}}, "runMaxTry", 5),
    ({"retry_settings": {"max_retries": 0}}, "runMaxTry", 1),
    ({"retry_settings": {"timeout": 300}}, "runInvocationTimeout", 300),
    ({"logging_level": "debug"}, "loggingLevel", "DEBUG"),
    ({"logging_level": "ERROR"}, "loggingLevel", "WARNING"),
    ({"error_threshold": 7}, "errorThreshold", 7),
    ({"mini_batch_error_threshold": 2}, "miniBatchErrorThreshold", 2),
    ({"environment_variables": {"A": 1, "B": "x"}}, "env",
     [{"name": "A", "value": "1"}, {"name": "B", "value": "x"}]),
], ids=lambda value: str(value))
def test_each_v2_setting_becomes_its_step_field(changes: dict[str, Any], field: str,
                                                 expected: Any) -> None:
    spec = convert_azure(base_job(**changes)).document["spec"]
    assert spec[field] == expected
    step_from_document(convert_azure(base_job(**changes)).document)


def test_task_fields_become_code_arguments_and_output() -> None:
    job = base_job()
    job["task"]["program_arguments"] = "--threshold 0.5 --label 'two words' --run_max_try 4"
    spec = convert_azure(job).document["spec"]
    assert spec["code"] == {"entryScript": "score.py", "sourceDirectory": "./src"}
    assert spec["input"] == {"type": "files", "uri": "./data"}
    assert spec["arguments"] == ["--threshold", "0.5", "--label", "two words",
                                 "--run_max_try", "4"]
    assert (spec["output"], spec["outputAction"]) == ({"uri": "./out/result"}, "append_row")
    assert "runMaxTry" not in spec  # an Azure argument stays an argument, not a field


def test_no_append_row_to_is_summary_only_with_a_note() -> None:
    job = base_job()
    del job["task"]["append_row_to"]
    conversion = convert_azure(job)
    assert conversion.document["spec"]["outputAction"] == "summary_only"
    assert "append_row_to" in all_notes(conversion.notes.by_field)


def test_max_retries_plus_one_is_explained_above_run_max_try() -> None:
    conversion = convert_azure(base_job(retry_settings={"max_retries": 2}))
    assert conversion.document["spec"]["runMaxTry"] == 3
    assert "counts retries" in " ".join(conversion.notes.by_field["runMaxTry"])


@pytest.mark.parametrize(("written", "expected"), [
    ("10", "10"), ("10kb", "10KB"), ("100 mb", "100MB"), ("1Gb", "1GB"), ("5000rows", "5000rows"),
])
def test_mini_batch_units_are_written_upper_case(written: str, expected: str) -> None:
    assert mini_batch_size(written) == expected


@pytest.mark.parametrize(("written", "expected"), [
    ("Predict_Digits", "predict-digits"),
    ("Partition by key parallel job", "partition-by-key-parallel-job"),
    ("2024 scoring.run", "scoring-run"),
    ("a" * 60, "a" * 48),
    ("x-" * 30, ("x-" * 24).rstrip("-")),
    ("__", None),
    ("ab", None),
])
def test_names_become_dns_labels_of_3_to_48_characters(written: str,
                                                       expected: str | None) -> None:
    assert step_name(written) == expected


def test_a_name_that_cannot_be_a_label_is_kept_and_said_so() -> None:
    conversion = convert_azure(base_job(name="__"), fallback_name="")
    assert conversion.document["metadata"]["name"] == "__"
    assert "cannot be made a DNS-1123 label" in conversion.notes.by_field["metadata"][0]


@pytest.mark.parametrize(("changes", "note"), [
    ({"compute": "azureml:gpu-cluster"}, "compute: azureml:gpu-cluster"),
    ({"identity": {"type": "managed"}}, "serviceAccountName"),
    ({"resources": {"instance_type": "Standard_NC6"}}, "resources.instance_type"),
    ({"future_setting": 1}, "future_setting"),
])
def test_settings_without_an_equivalent_leave_a_comment(changes: dict[str, Any],
                                                        note: str) -> None:
    conversion = convert_azure(base_job(**changes))
    assert note in all_notes(conversion.notes.by_field)


@pytest.mark.parametrize("path", ["azureml:cifar10-data:1", "azureml://datastores/x/paths/y",
                                  "${{parent.jobs.prepare.outputs.data}}", "https://host/x"])
def test_an_azure_data_asset_is_a_placeholder_that_fails_validation(path: str) -> None:
    job = base_job(inputs={"data": {"type": "uri_folder", "path": path}})
    conversion = convert_azure(job)
    problems = convert_problems(conversion.document)
    assert any(p.startswith("spec.input.uri") for p in problems), problems
    assert "s3://" in " ".join(conversion.notes.by_field["input"])


def convert_problems(document: dict[str, Any]) -> list[str]:
    from prs_runner.step.validation import validate_document

    return validate_document(document)


def test_wasbs_becomes_abfss_and_object_store_uris_pass() -> None:
    blob = "wasbs://data@account.blob.core.windows.net/images"
    spec = convert_azure(base_job(inputs={"data": {"type": "uri_folder", "path": blob}})
                         ).document["spec"]
    assert spec["input"]["uri"] == "abfss://data@account.blob.core.windows.net/images"
    spec = convert_azure(base_job(inputs={"data": {"path": "s3://bucket/images"}})
                         ).document["spec"]
    assert spec["input"]["uri"] == "s3://bucket/images"


@pytest.mark.parametrize(("data", "message"), [
    ([1, 2], "expected a mapping"),
    ({"type": "command", "command": "python x.py"}, "not a parallel job (type: 'command')"),
    (base_job(input_data="./data"), "input_data"),
    ({"type": "pipeline", "jobs": {"a": base_job(), "b": base_job()}}, "2 parallel jobs (a, b)"),
    ({"type": "pipeline", "jobs": {"p": {"type": "parallel", "component": "./c.yml"}}},
     "convert that file"),
])
def test_what_is_not_a_parallel_job_is_refused_in_one_line(data: Any, message: str) -> None:
    with pytest.raises(AzureConversionError) as error:
        convert_azure(data)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_files_pipeline_converts_to_a_valid_step(tmp_path: Path) -> None:
    converted = convert_azure_file(write(tmp_path, "pipeline.yml", FILES_JOB))
    step = step_from_document(yaml.safe_load(converted.text))
    assert converted.problems == []
    assert step.name == "predict-digits-mnist"
    assert step.spec["input"] == {"type": "files", "uri": "./data/mnist"}
    assert step.spec["sideInputs"] == [{"name": "score_model", "uri": "./mnist_models"}]
    assert step.spec["arguments"][:2] == ["--model", "${{inputs.score_model}}"]
    assert "--allowed_failed_percent" in step.spec["arguments"]
    assert (step.spec["output"]["uri"], step.spec["appendRowFileName"]) == (
        "./results", "aggregated_returns.csv")
    assert (step.spec["nodeCount"], step.spec["processCountPerNode"], step.spec["runMaxTry"],
            step.spec["miniBatchSize"], step.spec["image"]) == (
        2, 2, 3, "5", "registry.example/digits:1")
    assert {"name": "BATCH", "value": "8"} in step.spec["env"]
    assert step.metadata["annotations"]["parallelrun.io/azure-experiment"] == "digits-experiment"
    assert "# compute: azureml:cpu-cluster" in converted.text
    assert "prepare_data" in converted.text  # the pipeline's other job, named in a comment


def test_a_tabular_job_with_partition_keys_converts_to_a_valid_step(tmp_path: Path) -> None:
    converted = convert_azure_file(write(tmp_path, "job.yml", TABULAR_JOB))
    step = step_from_document(yaml.safe_load(converted.text))
    assert step.name == "oj-sales-train"
    assert step.spec["input"] == {"type": "tabular", "uri": "./oj_sales_data",
                                  "partitionKeys": ["Store", "Brand"]}
    assert step.spec["outputAction"] == "summary_only"
    assert step.spec["image"] == ""  # Azure's base image holds no runner: a comment says so
    assert step.spec["arguments"] == [
        "--drop_cols", "Revenue,Advert,Store,Brand", "--target_col", "Quantity",
        "--model_folder", "${{outputs.model_folder}}"]
    assert "resources.instance_type: Standard_D4_v2" in converted.text
    assert "conda_file" in converted.text


V1_CONFIG = """\
name: Predict_Digits
entry_script: score.py
source_directory: ./src
output_action: append_row
append_row_file_name: digits.txt
mini_batch_size: 10
error_threshold: 10
allowed_failed_count: 3
allowed_failed_percent: 20
node_count: 2
process_count_per_node: 4
run_invocation_timeout: 120
run_max_try: 2
logging_level: WARNING
environment_variables: {MODE: fast}
compute_target: cpu-cluster
inputs: [{name: digits, type: file, path: ./data/digits}, {name: more, path: ./data/more}]
side_inputs: [{name: model, path: ./models}]
output: ./out/digits
arguments: ["--model", "./models"]
allow_reuse: false
"""


def test_a_v1_parallel_run_config_file_converts_keyword_by_keyword(tmp_path: Path) -> None:
    converted = convert_azure_file(write(tmp_path, "config.json", V1_CONFIG))
    step = step_from_document(yaml.safe_load(converted.text))
    spec = step.spec
    assert step.name == "predict-digits"
    assert (spec["code"], spec["input"], spec["output"]) == (
        {"entryScript": "score.py", "sourceDirectory": "./src"},
        {"type": "files", "uri": "./data/digits"}, {"uri": "./out/digits"})
    assert (spec["outputAction"], spec["appendRowFileName"], spec["miniBatchSize"]) == (
        "append_row", "digits.txt", "10")
    assert (spec["errorThreshold"], spec["miniBatchErrorThreshold"],
            spec["allowedFailedPercent"]) == (10, 3, 20)
    assert (spec["nodeCount"], spec["processCountPerNode"], spec["runInvocationTimeout"],
            spec["runMaxTry"], spec["loggingLevel"], spec["allowReuse"]) == (
        2, 4, 120, 2, "WARNING", False)  # run_max_try counts tries, as runMaxTry does
    assert spec["sideInputs"] == [{"name": "model", "uri": "./models"}]
    assert spec["arguments"] == ["--model", "./models"]
    assert spec["env"] == [{"name": "MODE", "value": "fast"}]
    assert "'more' is not converted" in converted.text
    assert "compute: cpu-cluster" in converted.text


def test_a_v1_tabular_config_with_partition_keys_reads_tables() -> None:
    config = yaml.safe_load(V1_CONFIG)
    config.update(inputs=[{"name": "sales", "path": "./sales"}], partition_keys=["store"],
                  mini_batch_size="1mb")
    spec = convert_azure(config).document["spec"]
    assert spec["input"] == {"type": "tabular", "uri": "./sales", "partitionKeys": ["store"]}
    assert spec["miniBatchSize"] == "1MB"


@pytest.mark.parametrize(("text", "message"), [
    (None, "no such file"),
    ("a: [1,\n", "not valid YAML"),
    ("- 1\n", "expected a mapping"),
    ("type: sweep\n", "not a parallel job"),
])
def test_a_bad_file_is_one_line_naming_it(tmp_path: Path, text: str | None,
                                          message: str) -> None:
    path = tmp_path / "job.yml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(AzureConversionError) as error:
        convert_azure_file(path)
    assert str(error.value).startswith(str(path))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_folder_is_not_an_azure_file(tmp_path: Path) -> None:
    with pytest.raises(AzureConversionError, match="not a YAML or JSON text file"):
        convert_azure_file(tmp_path)


# Complete conversions: each case's Azure file (NAME.yml) and the step prs convert writes for
# it (NAME.step.yaml), comments included, and the fields prs validate still refuses.
CASES = Path(__file__).parent / "azure_conversion_cases"
CASE_PROBLEM_FIELDS: dict[str, list[str]] = {
    "azure-data-job": ["spec.input.uri", "spec.sideInputs[0].uri"],
    "pipeline-files": ["spec.arguments", "spec.sideInputs[1].uri"],
    "tabular-job": [],
    "v1-config": [],
}


def test_every_case_file_is_in_the_table() -> None:
    assert sorted(path.stem for path in CASES.glob("*.yml")) == sorted(CASE_PROBLEM_FIELDS)
    assert sorted(path.name for path in CASES.glob("*.step.yaml")) == sorted(
        f"{case}.step.yaml" for case in CASE_PROBLEM_FIELDS)


@pytest.mark.parametrize("case", sorted(CASE_PROBLEM_FIELDS))
def test_each_case_converts_to_its_expected_step(case: str) -> None:
    converted = convert_azure_file(CASES / f"{case}.yml")
    assert converted.text == (CASES / f"{case}.step.yaml").read_text()
    assert yaml.safe_load(converted.text) == converted.document
    assert [problem.split(": ")[0] for problem in converted.problems] == (
        CASE_PROBLEM_FIELDS[case])


def test_the_migration_guide_example_is_what_convert_writes(tmp_path: Path) -> None:
    guide = (Path(__file__).parents[2] / "docs" / "migration.md").read_text()
    example = guide.split("### Example", 1)[1]
    job, step = [block.split("```", 1)[0] for block in example.split("```yaml\n")[1:3]]
    converted = convert_azure_file(write(tmp_path, "score-digits.yml", job))
    assert (converted.text, converted.problems) == (step, [])


@pytest.mark.parametrize(("data", "message"), [
    ([1, 2], "expected a mapping (an Azure ML parallel job or a ParallelRunConfig file), "
             "got list"),
    ("type: parallel", "expected a mapping (an Azure ML parallel job or a ParallelRunConfig "
                       "file), got str"),
    ({"type": "command"}, "not a parallel job (type: 'command'); prs convert reads a job with "
                          "type: parallel, a pipeline holding one, or a ParallelRunConfig file "
                          "(entry_script and output_action)"),
    ({"entry_script": "score.py"}, "not a parallel job (type: None); prs convert reads a job "
                                   "with type: parallel, a pipeline holding one, or a "
                                   "ParallelRunConfig file (entry_script and output_action)"),
    (base_job(input_data="./data"), "input_data: './data': expected ${{inputs.NAME}} naming "
                                    "one of the job's inputs"),
    (base_job(input_data=None), "input_data: None: expected ${{inputs.NAME}} naming one of the "
                                "job's inputs"),
    (base_job(input_data="${{outputs.result}}"), "input_data: '${{outputs.result}}': expected "
                                                 "${{inputs.NAME}} naming one of the job's "
                                                 "inputs"),
    (base_job(input_data="${{inputs.other}}"), "input_data names inputs.other, which is not a "
                                               "data input (type and path) of the job"),
    (base_job(inputs={"data": "./data"}), "input_data names inputs.data, which is not a data "
                                          "input (type and path) of the job"),
    ({"type": "pipeline", "jobs": {"a": base_job(), "b": base_job()}},
     "a pipeline with 2 parallel jobs (a, b); prs convert takes one: copy it into a file of "
     "its own"),
    ({"type": "pipeline", "jobs": {"a": {"type": "command"}, "b": "parallel"}},
     "a pipeline with 0 parallel jobs (none); prs convert takes one: copy it into a file of "
     "its own"),
    ({"type": "pipeline", "jobs": [{"type": "parallel"}]},
     "jobs: expected a mapping (NAME: value), got list [{type: parallel}]"),
    ({"type": "pipeline", "jobs": {"p": {"type": "parallel", "component": "./c.yml"}}},
     "jobs.p is defined in its component (./c.yml); convert that file"),
    # A job given by its component alone has no type of its own.
    ({"type": "pipeline", "jobs": {"p": {"component": "./c.yml"}, "q": {"type": "command"}}},
     "jobs.p is defined in its component (./c.yml); convert that file"),
    ({"type": "pipeline", "jobs": {"p": {"component": "./c.yml"}, "q": {"component": "d"}}},
     "a pipeline with 0 parallel jobs (none); prs convert takes one: copy it into a file of "
     "its own"),
    (base_job(task={**base_job()["task"], "program_arguments": '--x "unbalanced'}),
     "task.program_arguments: No closing quotation in '--x \"unbalanced'"),
    (base_job(task={**base_job()["task"], "program_arguments": 5}),
     "task.program_arguments: 5: expected one string (or a list of strings)"),
    (base_job(task={**base_job()["task"], "program_arguments": ["--a", None]}),
     "task.program_arguments: ['--a', None]: expected one string (or a list of strings)"),
], ids=short_id)
def test_each_refusal_is_its_exact_line(data: Any, message: str) -> None:
    with pytest.raises(AzureConversionError) as error:
        convert_azure(data)
    assert str(error.value) == message


@pytest.mark.parametrize(("content", "message"), [
    (b"a: [1,\n", "line 2, column 1: not valid YAML: expected the node content, but found "
                  "'<stream end>'"),
    (b"a: b: c\n", "line 1, column 5: not valid YAML: mapping values are not allowed here"),
    (b"a: \x07\n", "not valid YAML: unacceptable character #x0007: special characters are not "
                   "allowed"),
    (b"\xff\xfe\x00", "not a YAML or JSON text file; give the parallel job's .yml file"),
    (b"[1]\n", "expected a mapping (an Azure ML parallel job or a ParallelRunConfig file), "
               "got list"),
    (b"type: parallel\ninput_data: x\n", "input_data: 'x': expected ${{inputs.NAME}} naming "
                                         "one of the job's inputs"),
    (b"a: &x [1, 2]\nb: *x\n", "line 2, column 4: not valid YAML: aliases (*x) are not "
                               "allowed in a step"),
    (b"type: parallel\ntype: command\n", "line 2, column 1: not valid YAML: key 'type' is "
                                          "given twice"),
], ids=["unclosed", "nested", "control", "binary", "list", "input_data", "alias", "twice"])
def test_each_unreadable_file_is_its_exact_line(tmp_path: Path, content: bytes,
                                                message: str) -> None:
    path = tmp_path / "job.yml"
    path.write_bytes(content)
    with pytest.raises(AzureConversionError) as error:
        convert_azure_file(path)
    assert str(error.value) == f"{path}: {message}"


def test_a_missing_file_and_a_folder_are_their_exact_lines(tmp_path: Path) -> None:
    with pytest.raises(AzureConversionError) as missing:
        convert_azure_file(tmp_path / "gone.yml")
    assert str(missing.value) == f"{tmp_path / 'gone.yml'}: no such file"
    with pytest.raises(AzureConversionError) as folder:
        convert_azure_file(str(tmp_path))
    assert str(folder.value) == (f"{tmp_path}: not a YAML or JSON text file; give the parallel "
                                 "job's .yml file")


# The comments, as the step carries them.
PLAIN_IMAGE_NOTE = "the image must hold the runner: build it FROM the runner image (README, Images)"
SUMMARY_NOTE = ("no task.append_row_to: run() results are not collected (summary_only, as on "
                "Azure); the script writes its own files to context.output_dir")
SIDE_INPUTS_NOTE = ("inputs the arguments name: each ${{inputs.NAME}} in arguments becomes "
                    "the side input's local path when the worker starts (also in "
                    "PRS_SIDE_INPUT_<NAME> and context.side_inputs[name])")
OUTPUT_ARGUMENT_NOTE = ("${{outputs.X}} becomes the worker's output folder (PRS_OUTPUT_DIR, a "
                        "local folder also when output.uri is on object storage)")
PROCESS_COUNT_NOTE = ("max_concurrency_per_instance not set: Azure runs one process per core "
                      "(1 on GPU nodes); the step runs one per CPU the pod may use: set it for "
                      "GPU nodes")


def image_note(environment: str) -> str:
    return (f"task.environment: {environment}: the pods run the runner image (spec.image empty: "
            "the operator's default); put the script's packages into an image built FROM the "
            "runner image (README, Images) and name it in spec.image; `prs run` uses this "
            "machine's Python")


def data_asset_note(what: str, text: str) -> str:
    return (f"{what}: {text}: an Azure data asset or datastore has no equivalent; give a local "
            "path or an s3://, gs:// or az:// URI")


def chosen_output_note(name: str, origin: str) -> str:
    return (f"outputs.{name}: {origin}; written to a local folder here: change it to the path "
            "or s3://, gs:// or az:// URI that should hold the result")


def resource_note(key: str, value: str) -> str:
    return (f"resources.{key}: {value}: no equivalent: set spec.resources (cpu, memory, "
            "nvidia.com/gpu) and spec.podTemplate.nodeSelector for the node type")


@pytest.mark.parametrize(("value", "expected"), [
    ({"type": "managed", "ids": [1, 2]}, "{ids: [1, 2], type: managed}"),
    (["a", {"b": 1}], "[a, {b: 1}]"),
    ({"long": ("word " * 30).strip()}, "{long: " + ("word " * 30).strip() + "}"),
    ("azureml:cpu", "azureml:cpu"),
    (3, "3"),
    (None, "None"),
])
def test_a_value_is_shown_on_one_line(value: Any, expected: str) -> None:
    assert shown(value) == expected


def test_a_section_that_is_not_a_mapping_reads_as_absent() -> None:
    assert (mapping({"a": 1}), mapping(["a"]), mapping(None), mapping("a")) == (
        {"a": 1}, {}, {}, {})


@pytest.mark.parametrize(("written", "expected"), [
    ("abc", "abc"),
    ("--abc--", "abc"),
    ("a--b__c  d..e", "a-b-c-d-e"),
    ("a\tb\nc", "a-b-c"),
    ("Épreuve Zürich!", "preuve-zrich"),
    ("-0-9abc", "abc"),
    ("a" * 47 + "-b", "a" * 47),
    ("a" * 48, "a" * 48),
    ("12", None),
    ("", None),
])
def test_more_names_as_dns_labels(written: str, expected: str | None) -> None:
    assert step_name(written) == expected


@pytest.mark.parametrize(("task", "expected", "notes"), [
    ({}, {"entryScript": None, "sourceDirectory": "."}, []),
    ({"type": "run_function", "code": "./src", "entry_script": "s.py"},
     {"entryScript": "s.py", "sourceDirectory": "./src"}, []),
    ({"type": "command", "code": ""}, {"entryScript": None, "sourceDirectory": "."},
     ["task.type: 'command': only run_function (an entry script with init() and run()) exists "
      "here"]),
    ({"code": "azureml:score:2"}, {"entryScript": None, "sourceDirectory": "azureml:score:2"},
     ["task.code: azureml:score:2: the code must be a local folder here (prs submit packs it); "
      "download it and give its path"]),
    ({"code": "git+https://host/repo"}, {"entryScript": None,
                                         "sourceDirectory": "git+https://host/repo"},
     ["task.code: git+https://host/repo: the code must be a local folder here (prs submit packs "
      "it); download it and give its path"]),
    ({"code": "my_azureml:code"}, {"entryScript": None, "sourceDirectory": "my_azureml:code"}, []),
])
def test_the_task_becomes_the_code_section(task: dict[str, Any], expected: dict[str, Any],
                                           notes: list[str]) -> None:
    written = Notes()
    assert code_section(task, written) == expected
    assert written.by_field == ({"code": notes} if notes else {})


@pytest.mark.parametrize(("environment", "image", "note"), [
    ({"image": "registry.example/score:1"}, "registry.example/score:1", PLAIN_IMAGE_NOTE),
    ({"image": "registry.example/score:1", "conda_file": None, "build": ""},
     "registry.example/score:1", PLAIN_IMAGE_NOTE),
    ({"image": "registry.example/score:1", "conda_file": "conda.yml"}, None,
     image_note("{conda_file: conda.yml, image: 'registry.example/score:1'}")),
    ({"image": "registry.example/score:1", "build": {"path": "."}}, None,
     image_note("{build: {path: .}, image: 'registry.example/score:1'}")),
    ({"image": "mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest"}, None,
     image_note("{image: 'mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:"
                "latest'}")),
    ({"image": "mcr.microsoft.com/other:1"}, "mcr.microsoft.com/other:1", PLAIN_IMAGE_NOTE),
    ({"image": 3}, None, image_note("{image: 3}")),
    ({"conda_file": "conda.yml"}, None, image_note("{conda_file: conda.yml}")),
    ("azureml:sklearn-env@latest", None, image_note("azureml:sklearn-env@latest")),
    (None, None, image_note("None")),
])
def test_the_environment_becomes_an_image_or_a_comment(environment: Any, image: str | None,
                                                       note: str) -> None:
    notes = Notes()
    assert task_image(environment, notes) == image
    assert notes.by_field == {"image": [note]}


@pytest.mark.parametrize("input_data", ["${{inputs.data}}", "  ${{ inputs.data }} "])
def test_input_data_names_the_main_input(input_data: str) -> None:
    assert input_data_name(input_data, {"data": {"path": "./d"}}) == "data"


@pytest.mark.parametrize(("data", "partition_keys", "section", "notes"), [
    ({"path": "./d"}, None, {"type": "files", "uri": "./d"}, []),
    ({"type": "uri_folder", "path": "./d", "mode": "ro_mount"}, [],
     {"type": "files", "uri": "./d"}, []),
    ({"type": "mltable", "path": "./t", "mode": "direct"}, ["store", 3],
     {"type": "tabular", "uri": "./t", "partitionKeys": ["store", "3"]},
     ["tabular: an MLTable file at the top of uri is read (its paths and read_delimited, "
      "read_parquet or read_json_lines; other transformations are refused); without one, the "
      "csv, parquet or jsonl files under uri are read"]),
    ({"type": "uri_file", "path": "./d/list.txt"}, None,
     {"type": "files", "uri": "./d", "glob": "list.txt"}, []),
    ({"type": "uri_file", "path": "list.txt"}, None,
     {"type": "files", "uri": ".", "glob": "list.txt"}, []),
    ({"type": "uri_file", "path": "/data/list.txt"}, None,
     {"type": "files", "uri": "/data", "glob": "list.txt"}, []),
    ({"type": "uri_file", "path": "/list.txt"}, None,
     {"type": "files", "uri": "/", "glob": "list.txt"}, []),
    ({"type": "uri_file", "path": "s3://bucket/day/list.txt"}, None,
     {"type": "files", "uri": "s3://bucket/day", "glob": "list.txt"}, []),
    ({"type": "uri_file", "path": "s3://bucket"}, None, {"type": "files", "uri": "s3://bucket"},
     ["inputs.main.type: 'uri_file': read as a folder of files"]),
    ({"type": "uri_file", "path": "./data/"}, None, {"type": "files", "uri": "./data/"},
     ["inputs.main.type: 'uri_file': read as a folder of files"]),
    ({"type": "custom_model", "path": "./m"}, "store",
     {"type": "files", "uri": "./m", "partitionKeys": "store"},
     ["inputs.main.type: 'custom_model': read as a folder of files"]),
    ({"type": "uri_folder", "path": "./d", "mode": "direct"}, None,
     {"type": "files", "uri": "./d"},
     ["mode direct: run() gets local paths here (objects are downloaded), not storage URLs"]),
])
def test_the_main_input_becomes_the_input_section(data: dict[str, Any], partition_keys: Any,
                                                  section: dict[str, Any],
                                                  notes: list[str]) -> None:
    written = Notes()
    assert input_section("main", data, {"partition_keys": partition_keys}, written) == section
    assert written.by_field == ({"input": notes} if notes else {})


@pytest.mark.parametrize(("path", "uri", "note"), [
    ("./data", "./data", None),
    ("data/images", "data/images", None),
    ("/mnt/data", "/mnt/data", None),
    ("s3://bucket/key", "s3://bucket/key", None),
    ("gs://bucket/key", "gs://bucket/key", None),
    ("az://container/key", "az://container/key", None),
    ("abfs://c@a.dfs.core.windows.net/k", "abfs://c@a.dfs.core.windows.net/k", None),
    ("abfss://c@a.dfs.core.windows.net/k", "abfss://c@a.dfs.core.windows.net/k", None),
    ("file:///mnt/data", "file:///mnt/data", None),
    ("pvc://claim/data", "pvc://claim/data", None),
    ("wasb://c@a.blob.core.windows.net/k", "abfss://c@a.blob.core.windows.net/k",
     "inputs.x: wasb://c@a.blob.core.windows.net/k is read as abfss:// (the same blob)"),
    ("wasbs://c@a.blob.core.windows.net/k", "abfss://c@a.blob.core.windows.net/k",
     "inputs.x: wasbs://c@a.blob.core.windows.net/k is read as abfss:// (the same blob)"),
    ("azureml:images:3", "azureml://images:3", data_asset_note("inputs.x", "azureml:images:3")),
    ("azureml:/images/", "azureml://images", data_asset_note("inputs.x", "azureml:/images/")),
    ("azureml://datastores/d/paths/p", "azureml://datastores/d/paths/p",
     data_asset_note("inputs.x", "azureml://datastores/d/paths/p")),
    ("${{ parent.inputs.images }}", "azureml://parent.inputs.images",
     data_asset_note("inputs.x", "${{ parent.inputs.images }}")),
    ("https://host/images", "https://host/images",
     data_asset_note("inputs.x", "https://host/images")),
    ("s3://bucket/a://b", "s3://bucket/a://b", None),
    ("wasbs://c@a.blob.core.windows.net/a://b", "abfss://c@a.blob.core.windows.net/a://b",
     "inputs.x: wasbs://c@a.blob.core.windows.net/a://b is read as abfss:// (the same blob)"),
    ("azureml:X-ray:1", "azureml://X-ray:1", data_asset_note("inputs.x", "azureml:X-ray:1")),
    ("", "azureml://inputs.x", data_asset_note("inputs.x", "no path")),
    (None, "azureml://inputs.x", data_asset_note("inputs.x", "no path")),
])
def test_a_location_is_kept_translated_or_a_placeholder(path: Any, uri: str,
                                                        note: str | None) -> None:
    notes = Notes()
    assert location(path, "inputs.x", "input", notes) == uri
    assert notes.by_field == ({"input": [note]} if note else {})


RESULT_FOLDER = {"result": {"type": "uri_folder", "path": "./out/result"}}
RESULT_FILE = {"result": {"type": "uri_file", "path": "./out/result/rows.txt"}}


@pytest.mark.parametrize(("outputs", "append_row_to", "names"), [
    (RESULT_FILE, "${{outputs.missing}}", "result"),
    (RESULT_FOLDER, "${{inputs.result}}", "result"),
    ({}, "${{outputs.result}}", "none"),
])
def test_append_row_to_naming_no_output_is_refused(outputs: Any, append_row_to: str,
                                                   names: str) -> None:
    """Azure refuses such a job; converting it to summary_only would lose run()'s results."""
    with pytest.raises(AzureConversionError) as raised:
        output_section(outputs, append_row_to, "score", Notes())
    assert str(raised.value) == (
        f"task.append_row_to: {append_row_to} names none of the job's outputs ({names}); "
        "write ${{outputs.NAME}} of one of them, or leave it out for summary_only")


@pytest.mark.parametrize(("outputs", "append_row_to", "fields", "notes"), [
    (RESULT_FOLDER, "${{outputs.result}}",
     {"output": {"uri": "./out/result"}, "outputAction": "append_row"}, {}),
    (RESULT_FOLDER, " ${{ outputs.result }} ",
     {"output": {"uri": "./out/result"}, "outputAction": "append_row"}, {}),
    (RESULT_FILE, "${{outputs.result}}",
     {"output": {"uri": "./out/result"}, "outputAction": "append_row",
      "appendRowFileName": "rows.txt"}, {}),
    (RESULT_FILE, None, {"output": {"uri": "./out/result"}, "outputAction": "summary_only"},
     {"outputAction": [SUMMARY_NOTE]}),
    ({"result": {"type": "uri_file", "path": "rows.txt"}}, "${{outputs.result}}",
     {"output": {"uri": "."}, "outputAction": "append_row", "appendRowFileName": "rows.txt"}, {}),
    ({"first": {"path": "./a"}, "second": {"path": "./b"}}, "${{outputs.second}}",
     {"output": {"uri": "./b"}, "outputAction": "append_row"}, {}),
    ({"first": {"path": "./a"}, "second": {"path": "./b"}}, "",
     {"output": {"uri": "./a"}, "outputAction": "summary_only"},
     {"outputAction": [SUMMARY_NOTE]}),
    (None, None, {"output": {"uri": "./out/score"}, "outputAction": "summary_only"},
     {"outputAction": [SUMMARY_NOTE],
      "output": [chosen_output_note("output", "no path: Azure chose the location")]}),
    ({"result": {"mode": "rw_mount"}}, "${{outputs.result}}",
     {"output": {"uri": "./out/score"}, "outputAction": "append_row"},
     {"output": [chosen_output_note("result", "no path: Azure chose the location")]}),
    ({"result": {"path": "azureml://datastores/blob/paths/out"}}, "${{outputs.result}}",
     {"output": {"uri": "./out/score"}, "outputAction": "append_row"},
     {"output": [chosen_output_note("result", "azureml://datastores/blob/paths/out: an Azure "
                                              "datastore or binding")]}),
    ({"result": {"type": "uri_file", "path": "azureml://datastores/blob/paths/out/rows.csv"}},
     "${{outputs.result}}", {"output": {"uri": "./out/score"}, "outputAction": "append_row",
                             "appendRowFileName": "rows.csv"},
     {"output": [chosen_output_note("result", "azureml://datastores/blob/paths/out/rows.csv: "
                                              "an Azure datastore or binding")]}),
    ({"result": {"type": "uri_file", "path": "${{parent.outputs.rows}}"}}, "${{outputs.result}}",
     {"output": {"uri": "./out/score"}, "outputAction": "append_row"},
     {"output": [chosen_output_note("result", "${{parent.outputs.rows}}: an Azure datastore or "
                                              "binding")]}),
    ({"result": {"path": "wasbs://c@a.blob.core.windows.net/out"}}, "${{outputs.result}}",
     {"output": {"uri": "abfss://c@a.blob.core.windows.net/out"}, "outputAction": "append_row"},
     {"output": ["outputs.result: wasbs://c@a.blob.core.windows.net/out is read as abfss:// "
                 "(the same blob)"]}),
    ({"result": {"path": "https://host/out"}}, "${{outputs.result}}",
     {"output": {"uri": "https://host/out"}, "outputAction": "append_row"},
     {"output": [data_asset_note("outputs.result", "https://host/out")]}),
    ({"result": "./out/r"}, "${{outputs.result}}",  # a bare string is the path
     {"output": {"uri": "./out/r"}, "outputAction": "append_row"}, {}),
], ids=lambda value: str(value)[:50])
def test_the_outputs_become_the_output_section(outputs: Any, append_row_to: Any,
                                               fields: dict[str, Any],
                                               notes: dict[str, list[str]]) -> None:
    written = Notes()
    assert output_section(outputs, append_row_to, "score", written) == fields
    assert written.by_field == notes


LITERAL_INPUTS: dict[str, Any] = {
    "data": {"type": "uri_folder", "path": "azureml:data:1"},  # the main input
    "rate": 0.5, "flag": True, "off": False, "label": "two words",
    "size": {"type": "integer", "default": 8}, "kept": {"type": "integer", "value": 3},
    "both": {"default": 0, "value": 9}, "declared": {"type": "string"},
}
MODEL = {"model": {"type": "uri_folder", "path": "./models"}}
VOCAB = {"vocab": {"type": "uri_file", "path": "azureml:vocab:2"}}


MAIN_INPUT_NOTE = ("${{inputs.data}}, the input data, becomes ${{input}}: the step's input as "
                   "the workers see it (its local folder or file, its URI on object storage)")


def optional_note(block: str, name: str) -> str:
    return (f"{block}: inputs.{name} has no value, so the optional argument is left out, as on "
            "Azure")


def unused_note(name: str) -> str:
    return (f"inputs.{name}: not named in program_arguments, so the script could not reach it on "
            "Azure; not converted")


@pytest.mark.parametrize(("text", "data_inputs", "arguments", "side_inputs", "notes"), [
    (None, {}, [], [], {}),
    ("", {}, [], [], {}),
    ([], {}, [], [], {}),
    ("--a 1 --b 'two words'", {}, ["--a", "1", "--b", "two words"], [], {}),
    (["--a", 1, "${{inputs.rate}}"], {}, ["--a", "1", "0.5"], [], {}),
    ("--data ${{inputs.data}}", {}, ["--data", "${{input}}"], [],
     {"arguments": [MAIN_INPUT_NOTE]}),
    ("--data ${{inputs.data}}", {"data": {"type": "uri_folder"}},
     ["--data", "${{input}}"], [], {"arguments": [MAIN_INPUT_NOTE]}),
    # Azure's optional arguments: kept when their inputs have values, else left out.
    ("--a 1 $[[--rate ${{inputs.rate}}]] $[[--none ${{inputs.declared}}]] --b 2", {},
     ["--a", "1", "--rate", "0.5", "--b", "2"], [],
     {"arguments": [optional_note("$[[--none ${{inputs.declared}}]]", "declared")]}),
    ("$[[--missing ${{inputs.missing}} --rate ${{inputs.rate}}]]$[[--x]]", {}, ["--x"], [],
     {"arguments": [optional_note("$[[--missing ${{inputs.missing}} --rate "
                                  "${{inputs.rate}}]]", "missing")]}),
    ("$[[--model\n ${{inputs.model}}]]", MODEL, ["--model", "${{inputs.model}}"],
     [{"name": "model", "uri": "./models"}], {"sideInputs": [SIDE_INPUTS_NOTE]}),
    (["--a", "$[[${{inputs.declared}}]]", "$[[${{inputs.rate}}]]"], {}, ["--a", "0.5"], [],
     {"arguments": [optional_note("$[[${{inputs.declared}}]]", "declared")]}),
    ("--rate=${{inputs.rate}}/x --flag ${{inputs.flag}} --off ${{inputs.off}}", {},
     ["--rate=0.5/x", "--flag", "true", "--off", "false"], [], {}),
    ("--label ${{inputs.label}} --size ${{ inputs.size }} --kept ${{inputs.kept}} "
     "--both ${{inputs.both}}", {}, ["--label", "two words", "--size", "8", "--kept", "3",
                                     "--both", "0"], [], {}),
    ("--model ${{inputs.model}} --again ${{inputs.model}}", MODEL,
     ["--model", "${{inputs.model}}", "--again", "${{inputs.model}}"],
     [{"name": "model", "uri": "./models"}],
     {"sideInputs": [SIDE_INPUTS_NOTE]}),
    ("--vocab ${{inputs.vocab}}", {**MODEL, **VOCAB}, ["--vocab", "${{inputs.vocab}}"],
     [{"name": "vocab", "uri": "azureml://vocab:2"}],
     {"sideInputs": [data_asset_note("inputs.vocab", "azureml:vocab:2"), SIDE_INPUTS_NOTE,
                     unused_note("model")]}),
    ("--rate ${{inputs.rate}}", {**MODEL, **VOCAB}, ["--rate", "0.5"], [],
     {"sideInputs": [unused_note("model"), unused_note("vocab")]}),
    ("--out ${{outputs.result}} --out2 '${{ outputs.other }}'", {},
     ["--out", "${{outputs.result}}", "--out2", "${{outputs.other}}"], [],
     {"arguments": [OUTPUT_ARGUMENT_NOTE]}),
    (["--out", "${{ outputs.result }}"], {}, ["--out", "${{outputs.result}}"], [],
     {"arguments": [OUTPUT_ARGUMENT_NOTE]}),
    ("--missing ${{inputs.missing}} --declared ${{inputs.declared}}", {},
     ["--missing", "${{inputs.missing}}", "--declared", "${{inputs.declared}}"], [],
     {"arguments": ["${{inputs.missing}}: no such input; left as written",
                    "${{inputs.declared}}: an input without a value; left as written"]}),
], ids=short_id)
def test_program_arguments_become_arguments_and_side_inputs(
        text: Any, data_inputs: dict[str, Any], arguments: list[str],
        side_inputs: list[dict[str, str]], notes: dict[str, list[str]]) -> None:
    written = Notes()
    assert program_arguments(text, {**LITERAL_INPUTS, **data_inputs}, "data",
                             written) == (arguments, side_inputs)
    assert written.by_field == notes


@pytest.mark.parametrize(("job", "fields", "notes"), [
    ({}, {}, {"processCountPerNode": [PROCESS_COUNT_NOTE]}),
    ({"max_concurrency_per_instance": 0, "error_threshold": 0, "mini_batch_error_threshold": 0,
      "mini_batch_size": 0, "retry_settings": {"timeout": 0}},
     {"miniBatchSize": "0", "processCountPerNode": 0, "errorThreshold": 0,
      "miniBatchErrorThreshold": 0, "runInvocationTimeout": 0}, {}),
    ({"max_concurrency_per_instance": 2, "resources": {"instance_count": None,
                                                       "instance_type": "Standard_NC6",
                                                       "properties": {"a": 1}}},
     {"processCountPerNode": 2},
     {"resources": [resource_note("instance_type", "Standard_NC6"),
                    resource_note("properties", "{a: 1}")]}),
    ({"max_concurrency_per_instance": 1, "resources": {"instance_count": 0}},
     {"nodeCount": 0, "processCountPerNode": 1}, {}),
    ({"max_concurrency_per_instance": 1, "retry_settings": {"max_retries": "two"}},
     {"processCountPerNode": 1},
     {"runMaxTry": ["retry_settings.max_retries: 'two' is not a number; set runMaxTry (tries, "
                    "the first included)"]}),
    ({"max_concurrency_per_instance": 1, "retry_settings": {"max_retries": 3, "timeout": 90}},
     {"processCountPerNode": 1, "runMaxTry": 4, "runInvocationTimeout": 90},
     {"runMaxTry": ["retry_settings.max_retries 3 + 1: Azure counts retries, runMaxTry counts "
                    "tries (the first included)"]}),
    ({"max_concurrency_per_instance": 1, "logging_level": "critical"},
     {"processCountPerNode": 1, "loggingLevel": "WARNING"},
     {"loggingLevel": ["logging_level critical: the step's quietest level is WARNING"]}),
    ({"max_concurrency_per_instance": 1, "logging_level": "warning"},
     {"processCountPerNode": 1, "loggingLevel": "WARNING"}, {}),
], ids=lambda value: str(value)[:50])
def test_the_job_settings_become_scalar_fields(job: dict[str, Any], fields: dict[str, Any],
                                               notes: dict[str, list[str]]) -> None:
    written = Notes()
    result = scalar_fields(job, written)
    assert (result, list(result)) == (fields, list(fields))
    assert written.by_field == notes


@pytest.mark.parametrize(("written", "expected"), [
    (" 10 kb ", "10KB"), ("10 KB", "10KB"), ("2gB", "2GB"), ("10.5", "10.5"), ("mb", "mb"),
    (7, "7"), ("10 tb", "10 tb"),
])
def test_more_mini_batch_sizes(written: Any, expected: str) -> None:
    assert mini_batch_size(written) == expected


@pytest.mark.parametrize(("written", "level", "noted"), [
    ("debug", "DEBUG", False), ("Info", "INFO", False), ("WARNING", "WARNING", False),
    ("error", "WARNING", True), ("CRITICAL", "WARNING", True),
])
def test_logging_levels_quieter_than_warning_are_warning(written: str, level: str,
                                                         noted: bool) -> None:
    notes = Notes()
    assert logging_level(written, notes) == level
    assert notes.by_field == ({"loggingLevel": [f"logging_level {written}: the step's quietest "
                                                "level is WARNING"]} if noted else {})


@pytest.mark.parametrize(("changes", "fallback", "metadata", "notes"), [
    ({}, "file", {"name": "score-job"}, []),
    ({"name": None, "display_name": "Score Job"}, "file",
     {"name": "score-job", "annotations": {"parallelrun.io/azure-display-name": "Score Job"}}, []),
    ({"display_name": "score-job", "description": "", "experiment_name": None, "tags": {}},
     "file", {"name": "score-job"}, []),
    ({"name": None}, "from_file", {"name": "from-file"}, []),
    ({"name": "", "display_name": ""}, "", {"name": ""},
     ["name: '' cannot be made a DNS-1123 label of 3-48 characters (lower-case letters, digits, "
      "'-'); choose one"]),
    ({"description": "Scores", "experiment_name": 7, "tags": {"team": "vision", "v": 2}}, "file",
     {"name": "score-job", "annotations": {
         "parallelrun.io/description": "Scores", "parallelrun.io/azure-experiment": "7",
         "parallelrun.io/azure-tag.team": "vision", "parallelrun.io/azure-tag.v": "2"}}, []),
    ({"tags": {"-a_b.c": 1, "x" * 53: 2, "x" * 54: 3, "a-": 4, "cost center": 5, "ü": 6}},
     "file", {"name": "score-job", "annotations": {"parallelrun.io/azure-tag.-a_b.c": "1",
                                                   "parallelrun.io/azure-tag." + "x" * 53: "2"}},
     [f"tags.{key}: {value}: the key cannot be part of an annotation key (letters, digits, '-', "
      "'_', '.'); dropped" for key, value in (("x" * 54, 3), ("a-", 4), ("cost center", 5),
                                               ("ü", 6))]),
    ({"tags": ["team"]}, "file", {"name": "score-job"}, []),
], ids=short_id)
def test_names_and_descriptions_become_metadata(changes: dict[str, Any], fallback: str,
                                                metadata: dict[str, Any],
                                                notes: list[str]) -> None:
    conversion = convert_azure(base_job(**changes), fallback_name=fallback)
    assert conversion.document["metadata"] == metadata
    assert conversion.notes.by_field.get("metadata", []) == notes


def test_a_pipeline_lends_its_description_and_names_its_other_jobs() -> None:
    job = base_job(name=None, tags={"owner": "ana"})
    pipeline = {"type": "pipeline", "description": "nightly", "experiment_name": "runs",
                "tags": {"team": "vision"}, "display_name": "not the step's",
                "jobs": {"prepare": {"type": "command"}, "score_it": job, "publish": "later"}}
    conversion = convert_azure(pipeline, fallback_name="file")
    assert conversion.document["metadata"] == {"name": "score-it", "annotations": {
        "parallelrun.io/description": "nightly", "parallelrun.io/azure-experiment": "runs",
        "parallelrun.io/azure-tag.owner": "ana"}}
    assert conversion.notes.by_field[""] == [
        "the pipeline's other jobs (prepare, publish) are not converted: run them before this "
        "step, and give their outputs' locations to its inputs"]


def test_a_pipelines_parent_bindings_become_its_own_inputs_and_outputs() -> None:
    """The usual pipeline shape: the job's inputs and outputs are bound to the pipeline's."""
    job = base_job(inputs={"data": "${{parent.inputs.images}}", "rate": 0.5,
                           "gone": "${{ parent.inputs.missing }}"},
                   outputs={"result": "${{parent.outputs.scores}}"})
    pipeline = {"type": "pipeline", "jobs": {"score_it": job},
                "inputs": {"images": {"type": "uri_folder", "path": "./images"}},
                "outputs": {"scores": {"type": "uri_folder", "path": "./out/scores"}}}
    spec = convert_azure(pipeline).document["spec"]
    assert (spec["input"], spec["output"]) == ({"type": "files", "uri": "./images"},
                                               {"uri": "./out/scores"})


@pytest.mark.parametrize(("settings", "extra", "reuse", "notes"), [
    ({"force_rerun": True, "continue_on_step_failure": True}, {"compute": "azureml:c"}, False,
     ["settings.continue_on_step_failure: true: a pipeline setting; no equivalent for one step",
      "the pipeline's compute: azureml:c: no equivalent: the step runs where Kubernetes "
      "schedules its pods; place them with spec.podTemplate.nodeSelector / tolerations and "
      "size them with spec.resources"]),
    ({"force_rerun": False}, {"future": 1}, None,
     ["the pipeline's future: 1: no equivalent: not a pipeline key this converter knows; "
      "dropped"]),
])
def test_a_pipelines_settings_are_honoured_or_said(settings: dict[str, Any],
                                                   extra: dict[str, Any], reuse: bool | None,
                                                   notes: list[str]) -> None:
    pipeline = {"type": "pipeline", "jobs": {"score_it": base_job()}, "settings": settings,
                **extra}
    conversion = convert_azure(pipeline)
    assert conversion.document["spec"].get("allowReuse") == reuse
    assert conversion.notes.by_field.get("", []) == notes


def test_a_pipeline_lends_its_tags_to_a_job_without_any() -> None:
    pipeline = {"type": "pipeline", "tags": {"team": "vision"}, "jobs": {"score_it": base_job()}}
    assert convert_azure(pipeline).document["metadata"] == {
        "name": "score-job", "annotations": {"parallelrun.io/azure-tag.team": "vision"}}


def test_without_a_name_or_a_file_name_the_name_is_empty_and_said_so() -> None:
    conversion = convert_azure(base_job(name=None))
    assert conversion.document["metadata"] == {"name": ""}
    assert conversion.notes.by_field["metadata"] == [
        "name: '' cannot be made a DNS-1123 label of 3-48 characters (lower-case letters, "
        "digits, '-'); choose one"]


def test_a_v1_file_without_a_name_is_named_after_the_file() -> None:
    config = {**MINIMAL_V1, "inputs": ["./d"], "output": "./o"}
    assert convert_azure(config, fallback_name="nightly_scores").document["metadata"] == {
        "name": "nightly-scores"}


def test_a_pipeline_of_one_job_has_no_header_note_and_its_key_or_the_file_names_it() -> None:
    alone = convert_azure({"type": "pipeline", "jobs": {"score_it": base_job(name=None)}})
    assert (alone.document["metadata"], alone.notes.by_field.get("")) == (
        {"name": "score-it"}, None)
    unnamed = convert_azure({"type": "pipeline", "jobs": {"": base_job(name=None)}},
                            fallback_name="the_file")
    assert unnamed.document["metadata"] == {"name": "the-file"}


@pytest.mark.parametrize(("changes", "notes"), [
    ({"compute": "azureml:cpu"}, ["compute: azureml:cpu: no equivalent: the step runs where "
                                  "Kubernetes schedules its pods; place them with "
                                  "spec.podTemplate.nodeSelector / tolerations and size them "
                                  "with spec.resources"]),
    ({"identity": {"type": "managed"}},
     ["identity: {type: managed}: no equivalent: pods act as their service account: "
      "spec.podTemplate.serviceAccountName, or storage credentials in spec.podTemplate.env / "
      "envFrom (docs/object-storage.md)"]),
    ({"services": {"ssh": {}}}, ["services: {ssh: {}}: no equivalent: no interactive services "
                                 "on the step's pods"]),
    ({"properties": {"a": 1}}, ["properties: {a: 1}: no equivalent: Azure's own run properties; "
                                "dropped"]),
    ({"future": 1, "$schema": "x", "display_name": "d", "tags": {}},
     ["future: 1: no equivalent: not a parallel job key this converter knows; dropped"]),
])
def test_each_top_level_key_without_an_equivalent_is_its_header_comment(
        changes: dict[str, Any], notes: list[str]) -> None:
    assert convert_azure(base_job(**changes)).notes.by_field[""] == notes


@pytest.mark.parametrize(("variables", "env"), [
    ({"A": 1, 2: True, "B": "x y", "C": 0.5},
     [{"name": "A", "value": "1"}, {"name": "2", "value": "true"},
      {"name": "B", "value": "x y"}, {"name": "C", "value": "0.5"}]),
    ({}, None),
])
def test_environment_variables_become_env(variables: Any, env: Any) -> None:
    spec = convert_azure(base_job(environment_variables=variables)).document["spec"]
    assert spec.get("env") == env


@pytest.mark.parametrize(("changes", "message"), [
    ({"environment_variables": ["A=1"]},
     "environment_variables: expected a mapping (NAME: value), got list [A=1]"),
    ({"resources": ["instance_count", 2]},
     "resources: expected a mapping (NAME: value), got list [instance_count, 2]"),
    ({"retry_settings": "3"}, "retry_settings: expected a mapping (NAME: value), got str 3"),
    ({"outputs": ["o"]}, "outputs: expected a mapping (NAME: value), got list [o]"),
    ({"environment_variables": {"C": None}},
     "environment_variables.C: None: expected a string, a number or true/false"),
    ({"environment_variables": {"E": {"x": 1}}},
     "environment_variables.E: {x: 1}: expected a string, a number or true/false"),
])
def test_a_section_of_the_wrong_type_is_refused_not_dropped(changes: dict[str, Any],
                                                           message: str) -> None:
    with pytest.raises(AzureConversionError) as raised:
        convert_azure(base_job(**changes))
    assert str(raised.value) == message


@pytest.mark.parametrize(("value", "reuse", "notes"), [
    (False, False, ["is_deterministic: false: a step with the same inputs and settings runs "
                    "again instead of reusing its last result"]),
    (True, None, []),
])
def test_is_deterministic_false_turns_reuse_off(value: bool, reuse: bool | None,
                                                notes: list[str]) -> None:
    conversion = convert_azure(base_job(is_deterministic=value))
    assert conversion.document["spec"].get("allowReuse") == reuse
    assert conversion.notes.by_field.get("allowReuse", []) == notes
    assert "" not in conversion.notes.by_field


def test_a_plain_image_is_the_step_image_and_fields_come_in_order() -> None:
    job = base_job(max_concurrency_per_instance=1, environment_variables={"A": 1})
    job["task"].update(environment={"image": "registry.example/s:1"},
                       program_arguments="--m ${{inputs.model}}")
    job["inputs"]["model"] = {"path": "./m"}
    document = convert_azure(job).document
    assert list(document) == ["apiVersion", "kind", "metadata", "spec"]
    assert (document["apiVersion"], document["kind"]) == ("parallelrun.io/v1alpha1",
                                                          "ParallelRunStep")
    assert list(document["spec"]) == ["code", "image", "input", "output", "outputAction",
                                      "sideInputs", "processCountPerNode", "arguments", "env"]
    assert document["spec"]["image"] == "registry.example/s:1"


@pytest.mark.parametrize(("texts", "indent", "after", "lines"), [
    (["short"], "", "", ["# short"]),
    (["short"], "  ", "image", ["  # image: short"]),
    ([""], "  ", "", ["  # "]),
    (["a", "b"], "", "", ["# a", "# b"]),
    (["a" * 94], "", "", ["# " + "a" * 94]),
    (["a" * 95], "", "", ["# " + "a" * 94, "#   a"]),
    (["a" * 92], "  ", "", ["  # " + "a" * 92]),
    (["a" * 93], "  ", "", ["  # " + "a" * 92, "  #   a"]),
    (["one two three"], "", "x" * 88, ["# " + "x" * 88 + ": one", "#   two three"]),
])
def test_notes_become_wrapped_comment_lines(texts: list[str], indent: str, after: str,
                                            lines: list[str]) -> None:
    assert comment_lines(texts, indent, after=after) == lines


@pytest.mark.parametrize(("value", "text"), [
    ({"code": {"entryScript": "s.py", "sourceDirectory": "./src"}},
     "code: {entryScript: s.py, sourceDirectory: ./src}\n"),
    ({"input": {"type": "tabular", "partitionKeys": ["a"]}},
     "input:\n  type: tabular\n  partitionKeys: [a]\n"),
    ({"arguments": ["--a", "1", 2]}, "arguments:\n- --a\n- '1'\n- 2\n"),
    ({"arguments": []}, "arguments: []\n"),
    ({"sideInputs": [{"name": "m", "uri": "./m"}]}, "sideInputs:\n- {name: m, uri: ./m}\n"),
    ({"nested": [["a"]]}, "nested:\n- [a]\n"),
    ({"b": 1, "a": "é"}, "b: 1\na: é\n"),
    ({"k": "word " * 17 + "end"}, "k: " + "word " * 17 + "end\n"),
    ({"k": "word " * 19 + "end"}, "k: " + "word " * 18 + "word\n  end\n"),
])
def test_fields_are_dumped_as_the_readme_writes_steps(value: dict[str, Any], text: str) -> None:
    assert dump(value) == text


@pytest.mark.parametrize(("value", "expected"), [
    ([], True), (["a", 1, None], True), ([["a"]], False), ([{"a": 1}], False), ("ab", False),
    ({"a": 1}, False),
])
def test_a_word_list_holds_no_collections(value: Any, expected: bool) -> None:
    assert is_word_list(value) is expected


def test_render_places_each_note_above_its_field_and_the_others_last() -> None:
    document = {"apiVersion": "v", "kind": "K", "metadata": {"name": "n"}, "extra": "x",
                "spec": {"a": 1, "b": [1]}}
    notes = {"": ["head"], "metadata": ["meta"], "b": ["above b"], "z": ["later"], "y": ["y"]}
    assert render_step(document, notes, source="job.yml") == (
        "# Converted by `prs convert` from job.yml.\n# head\n# metadata: meta\n"
        "apiVersion: v\nkind: K\nmetadata: {name: n}\nspec:\n  a: 1\n  # above b\n  b:\n  - 1\n"
        "  # z: later\n  # y: y\n")


MINIMAL_V1 = {"entry_script": "score.py", "output_action": "summary_only"}


@pytest.mark.parametrize(("config", "expected"), [
    (MINIMAL_V1, True),
    ({"entry_script": "score.py", "output_action": "append_row", "name": "x"}, True),
    ({"entry_script": "score.py"}, False),
    ({"output_action": "append_row"}, False),
    ({**MINIMAL_V1, "type": "parallel"}, False),
])
def test_a_v1_file_is_known_by_entry_script_and_output_action(config: dict[str, Any],
                                                              expected: bool) -> None:
    assert is_v1_config(config) is expected


def test_a_minimal_v1_config_is_a_minimal_parallel_job() -> None:
    translation = translate_v1({**MINIMAL_V1, "name": None, "node_count": None,
                                "run_max_try": None, "arguments": None, "side_inputs": None})
    assert translation.job == {"type": "parallel",
                               "task": {"type": "run_function", "entry_script": "score.py"},
                               "outputs": {"output": {"type": "uri_folder", "path": None}}}
    assert (translation.fields, translation.notes) == ({}, [])


def test_v1_keywords_go_to_their_v2_keys_and_step_fields() -> None:
    config = {**MINIMAL_V1, "output_action": "append_row", "name": "n", "description": "d",
              "compute_target": "c", "mini_batch_size": "1", "partition_keys": ["k"],
              "node_count": 2, "process_count_per_node": 3, "environment_variables": {"A": 1},
              "source_directory": "./src", "environment": "env", "logging_level": "DEBUG",
              "error_threshold": 0, "allowed_failed_count": 1, "allowed_failed_percent": 5,
              "run_invocation_timeout": 9, "run_max_try": 4, "append_row_file_name": "r.txt",
              "allow_reuse": False, "output": {"uri": "s3://b/o"},
              "arguments": ["--a", 1], "side_inputs": {"name": "m", "uri": "./m"}}
    translation = translate_v1(config)
    assert translation.job == {
        "type": "parallel", "name": "n", "description": "d", "compute": "c",
        "mini_batch_size": "1", "partition_keys": ["k"], "resources": {"instance_count": 2},
        "max_concurrency_per_instance": 3, "environment_variables": {"A": 1},
        "logging_level": "DEBUG",
        "task": {"type": "run_function", "code": "./src", "entry_script": "score.py",
                 "environment": "env", "append_row_to": "${{outputs.output}}"},
        "outputs": {"output": {"type": "uri_folder", "path": "s3://b/o"}}}
    assert translation.fields == {
        "errorThreshold": 0, "miniBatchErrorThreshold": 1, "allowedFailedPercent": 5,
        "runInvocationTimeout": 9, "runMaxTry": 4, "appendRowFileName": "r.txt",
        "allowReuse": False, "sideInputs": [{"name": "m", "uri": "./m"}],
        "arguments": ["--a", "1"]}
    assert translation.notes == []


@pytest.mark.parametrize(("inputs", "partition_keys", "job_inputs", "notes"), [
    (None, None, None, []),
    ([], ["k"], None, []),
    ("./data", None, {"input0": {"type": "uri_folder", "path": "./data"}}, []),
    (["./data"], ["k"], {"input0": {"type": "mltable", "path": "./data"}}, []),
    ({"name": "d", "uri": "s3://b/d"}, None, {"d": {"type": "uri_folder", "path": "s3://b/d"}},
     []),
    ([{"path": "./t", "type": "TabularDataset"}], None,
     {"input0": {"type": "mltable", "path": "./t"}}, []),
    ([{"name": "t", "path": "./t", "type": "Tabular", "uri": "./u"}], None,
     {"t": {"type": "mltable", "path": "./t"}}, []),
    ([{"name": "f", "path": "./f", "type": "FileDataset"}], ["k"],
     {"f": {"type": "uri_folder", "path": "./f"}}, []),
    ([{"name": "f", "path": "./f/a.csv", "type": "uri_file"}], None,
     {"f": {"type": "uri_file", "path": "./f/a.csv"}}, []),
    ([{"name": "f", "path": "./f", "type": "custom"}], None,
     {"f": {"type": "custom", "path": "./f"}}, []),
    ([{"name": "a", "path": "./a"}, "./b", {"name": "c"}], None,
     {"a": {"type": "uri_folder", "path": "./a"}},
     [("input", f"inputs: {name!r} is not converted: a step reads one input; put the datasets "
                "under one folder or prefix, or run one step per dataset")
      for name in ("input1", "c")]),
], ids=short_id)
def test_v1_datasets_become_the_main_input(inputs: Any, partition_keys: Any, job_inputs: Any,
                                           notes: list[tuple[str, str]]) -> None:
    translation = translate_v1({**MINIMAL_V1, "inputs": inputs, "partition_keys": partition_keys})
    assert translation.job.get("inputs") == job_inputs
    assert translation.job.get("input_data") == (
        "${{inputs." + next(iter(job_inputs)) + "}}" if job_inputs else None)
    assert translation.notes == notes


@pytest.mark.parametrize(("output", "output_action", "path", "append_row_to", "notes"), [
    ("./o", "append_row", "./o", "${{outputs.output}}", []),
    ({"path": "./p", "uri": "./u"}, "summary_only", "./p", None, []),
    ({"uri": "./u"}, "summary_only", "./u", None, []),
    ({}, "summary_only", None, None, []),
    (None, "append", None, None,
     [("outputAction", "output_action: 'append' is neither append_row nor summary_only; "
                       "summary_only is written")]),
])
def test_the_v1_output_becomes_the_jobs_output(output: Any, output_action: str, path: Any,
                                               append_row_to: str | None,
                                               notes: list[tuple[str, str]]) -> None:
    translation = translate_v1({**MINIMAL_V1, "output": output, "output_action": output_action})
    assert translation.job["outputs"] == {"output": {"type": "uri_folder", "path": path}}
    assert translation.job["task"].get("append_row_to") == append_row_to
    assert translation.notes == notes


@pytest.mark.parametrize(("side_inputs", "expected"), [
    (["./m", {"name": "v", "path": "./v", "uri": "./u"}, {"uri": "s3://b/w"}, {}],
     [{"name": "side0", "uri": "./m"}, {"name": "v", "uri": "./v"},
      {"name": "side2", "uri": "s3://b/w"}, {"name": "side3", "uri": None}]),
    (("./a", "./b"), [{"name": "side0", "uri": "./a"}, {"name": "side1", "uri": "./b"}]),
    ([], None),
])
def test_v1_side_inputs_become_side_inputs(side_inputs: Any, expected: Any) -> None:
    assert translate_v1({**MINIMAL_V1, "side_inputs": side_inputs}).fields.get(
        "sideInputs") == expected


def test_unknown_v1_keywords_are_named_in_a_header_comment() -> None:
    conversion = convert_azure({**MINIMAL_V1, "inputs": ["./d"], "output": "./o",
                                "parallel_run_config": {}, "retry": 1})
    assert conversion.notes.by_field[""] == [
        f"{key}: not a ParallelRunConfig or ParallelRunStep keyword this converter knows; "
        "dropped" for key in ("parallel_run_config", "retry")]
    assert conversion.document["spec"]["input"] == {"type": "files", "uri": "./d"}


@pytest.mark.parametrize(("arguments", "expected", "notes"), [
    ("--model ../models --label 'two words'", ["--model", "../models", "--label", "two words"],
     [("arguments", "arguments: one string, split into words as a shell would "
                    "(ParallelRunStep takes a list)")]),
    (["--lr", 0.1], ["--lr", "0.1"], []),
    ("", [], [("arguments", "arguments: one string, split into words as a shell would "
                            "(ParallelRunStep takes a list)")]),
])
def test_v1_arguments_are_a_list_of_words(arguments: Any, expected: list[str],
                                          notes: list[tuple[str, str]]) -> None:
    translation = translate_v1({**MINIMAL_V1, "arguments": arguments})
    assert translation.fields["arguments"] == expected
    assert [note for note in translation.notes if note[0] == "arguments"] == notes


def test_a_v1_argument_string_with_an_open_quote_is_refused() -> None:
    with pytest.raises(AzureConversionError) as raised:
        translate_v1({**MINIMAL_V1, "arguments": "--x 'open"})
    assert str(raised.value) == "arguments: No closing quotation in \"--x 'open\""


@pytest.mark.parametrize(("value", "given"), [
    ({"type": "uri_folder", "path": "./d"}, True), ({"type": "number", "default": 0}, True),
    ({"type": "string", "value": ""}, True), ({"type": "number", "optional": True}, False),
    ({"path": None, "default": None}, False), (0.5, True), (False, True), (None, False),
])
def test_an_input_has_a_value_when_it_gives_data_a_literal_or_a_default(value: Any,
                                                                        given: bool) -> None:
    assert has_value(value) is given


def test_a_section_of_the_wrong_type_is_shown_cut_to_80_characters() -> None:
    with pytest.raises(AzureConversionError) as raised:
        section({"resources": "x" * 100}, "resources")
    assert str(raised.value) == "resources: expected a mapping (NAME: value), got str " + "x" * 80
    assert section({"resources": None}, "resources") == {}
