"""`prs convert`: Azure ML parallel jobs (CLI v2) and ParallelRunConfig files (SDK v1) as steps.

The job texts below are written in the shapes of Azure's cli/jobs/parallel examples (a files
job with a model input and append_row_to, a tabular mltable job with partition_keys), with
local paths so that the converted step validates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from prs_runner.step.azure_conversion import convert_azure, convert_azure_file
from prs_runner.step.azure_job_sections import AzureConversionError, mini_batch_size, step_name
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
    assert step.spec["arguments"][:2] == ["--model", "./mnist_models"]
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
        "--model_folder", "./out/oj-sales-train"]
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
