"""Partitioned inputs as Azure's data steps write them: folders that hold values only
(`1000/dominicks/part.csv`, the many-models layout), Azure's `partition_format`, and a
files input with partition keys (Azure's total-file-size example)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import yaml

from tests.runner.conftest import StepDir
from tests.runner.test_tabular import assert_succeeded, calls, tabular_step


def write_value_folders(root: Path) -> None:
    """Azure's many-models data: one CSV per store and brand, no key columns in the files."""
    for store in (1000, 2):
        for brand in ("dominicks", "tropicana"):
            folder = root / "data" / str(store) / brand
            folder.mkdir(parents=True)
            pd.DataFrame({"file": f"{store}/{brand}", "week": range(10),
                          "quantity": range(store, store + 10)}).to_csv(
                folder / "part.csv", index=False)


def test_value_only_folders_give_the_keys_in_key_order(tmp_path: Path) -> None:
    write_value_folders(tmp_path)
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data",
                                         "partitionKeys": ["Store", "Brand"]},
                        columns=("Store", "Brand", "week"), appendRowFormat="csv")
    result = assert_succeeded(step)
    assert result["miniBatches"]["total"] == 4
    assert [c["keys"] for c in calls(step)] == [
        {"Store": 2, "Brand": "dominicks"}, {"Store": 2, "Brand": "tropicana"},
        {"Store": 1000, "Brand": "dominicks"}, {"Store": 1000, "Brand": "tropicana"}]
    output = pd.read_csv(step.out / "parallel_run_step.txt")
    assert len(output) == 40
    assert output[["Store", "Brand"]].drop_duplicates().values.tolist() == [
        [2, "dominicks"], [2, "tropicana"], [1000, "dominicks"], [1000, "tropicana"]]


def test_azure_partition_format(tmp_path: Path) -> None:
    write_value_folders(tmp_path)
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data",
                                         "partitionKeys": ["Brand"],
                                         "partitionFormat": "{Store}/{Brand}/*.csv"},
                        columns=("Brand", "file"), appendRowFormat="csv")
    assert_succeeded(step)
    made = calls(step)
    assert [(c["keys"], c["rows"], c["files"]) for c in made] == [
        ({"Brand": "dominicks"}, 20, ["1000/dominicks", "2/dominicks"]),
        ({"Brand": "tropicana"}, 20, ["1000/tropicana", "2/tropicana"])]


def test_a_misspelt_key_lists_the_files_columns_and_folders(tmp_path: Path) -> None:
    write_value_folders(tmp_path)
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data",
                                         "partitionKeys": ["Quantity"]})
    result = step.run()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert ("spec.input.partitionKeys: Quantity not in 1000/dominicks/part.csv: its columns "
            "are file, week, quantity; its folders are 1000/dominicks") in result.stderr
    assert "did you mean 'quantity' for 'Quantity'?" in result.stderr


FILE_SIZES = """
import os
def run(mini_batch, mini_batch_context):
    keys = mini_batch_context.partition_key_value
    print(f"dataset = {mini_batch_context.dataset}")  # as Azure's example does
    names = mini_batch_context.dataset.to_path()
    assert names == ["/" + p.split("/data/", 1)[1] for p in mini_batch], (names, mini_batch)
    return [f"{keys['Store']} {keys['Brand']} {os.path.getsize(path)}" for path in mini_batch]
"""


def test_a_files_input_with_partition_keys(tmp_path: Path) -> None:
    """Azure's total-file-size shape: one mini-batch per folder combination of a files
    input, the key values in the context."""
    data = tmp_path / "data"
    for store, brand, sizes in ((1, "a", (3, 4)), (1, "b", (5,)), (2, "a", (6, 7, 8))):
        folder = data / str(store) / brand
        folder.mkdir(parents=True)
        for index, size in enumerate(sizes):
            (folder / f"f{index}.bin").write_bytes(b"x" * size)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text(textwrap.dedent(FILE_SIZES))
    document = {
        "apiVersion": "parallelrun.io/v1alpha1", "kind": "ParallelRunStep",
        "metadata": {"name": "file-sizes"},
        "spec": {"code": {"entryScript": "score.py", "sourceDirectory": "./src"},
                 "input": {"type": "files", "uri": "./data", "partitionKeys": ["Store", "Brand"]},
                 "output": {"uri": "./out"}, "processCountPerNode": 2},
    }
    (tmp_path / "step.yaml").write_text(yaml.safe_dump(document))
    step = StepDir(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(step.step)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    job = step.job_result()
    assert job["miniBatches"]["total"] == 3
    assert job["items"] == {"total": 6, "succeeded": 6, "failed": 0}
    assert step.output_lines() == ["1 a 3", "1 a 4", "1 b 5", "2 a 6", "2 a 7", "2 a 8"]
    assert [r["items"] for r in step.report_rows()] == ["2", "1", "3"]


MLTABLE = """
paths:
  - pattern: ./sales-*.csv
transformations:
  - read_delimited:
      delimiter: ','
      encoding: 'utf8'
      header: all_files_same_headers
"""


def test_an_mltable_folder_is_read_as_its_mltable_says(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "MLTable").write_text(MLTABLE)
    for index in range(2):
        pd.DataFrame({"file": f"sales-{index}", "id": range(index * 5, index * 5 + 5)}).to_csv(
            data / f"sales-{index}.csv", index=False)
    (data / "notes.csv").write_text("file,id\nnot-this,99\n")  # not in the MLTable's paths
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data"})
    result = assert_succeeded(step)
    assert result["items"]["total"] == 10
    assert sorted({f for c in calls(step) for f in c["files"]}) == ["sales-0", "sales-1"]


def test_an_mltable_asking_what_cannot_be_done_is_refused_by_name(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "MLTable").write_text(MLTABLE.replace("','", "';'") + "  - take: 10\n")
    (data / "sales-0.csv").write_text("file,id\na,1\n")
    step = tabular_step(tmp_path, input={"type": "tabular", "uri": "./data"})
    result = step.run()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "spec.input.uri: MLTable: transformations take are not applied here" in result.stderr
    assert "read_delimited delimiter: ';' is not supported here" in result.stderr


MANY_MODELS = """
def run(mini_batch, context):
    if context.partition_key_value["Store"] == 1000 and context.partition_key_value[
            "Brand"] == "tropicana":
        raise RuntimeError("cannot fit 1000/tropicana")
    return mini_batch.head(1)  # one row per partition: the model's summary
"""


def test_a_failure_names_the_exception_not_a_short_return(tmp_path: Path) -> None:
    """Many models returns one row per partition (its other rows count as failed items); the
    mini-batch that raised is the first error the failure names."""
    write_value_folders(tmp_path)
    step = tabular_step(tmp_path, script=MANY_MODELS, runMaxTry=1, miniBatchErrorThreshold=0,
                        input={"type": "tabular", "uri": "./data",
                               "partitionKeys": ["Store", "Brand"]})
    result = step.run()
    assert result.returncode == 1
    job = step.job_result()
    assert "first error: RuntimeError: cannot fit 1000/tropicana" in job["message"]
    assert job["firstError"]["type"] == "RuntimeError"
