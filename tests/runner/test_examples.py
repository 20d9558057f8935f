"""Every example step validates offline and runs to success with `prs run`."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prs_runner.step.validation import load_step

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_STEPS = sorted(p for p in (ROOT / "examples").rglob("*.yaml")
                       if "kind: ParallelRunStep" in p.read_text())


def test_there_are_examples() -> None:
    assert EXAMPLE_STEPS


# Each example step, the test file that runs it and the text by which it names the step.
RUN_BY = {
    "examples/digits/step.yaml": ("tests/runner/test_examples.py", 'example / "step.yaml"'),
    "examples/digits/cluster-step.yaml": ("tests/cluster/test_operator.py",
                                          'DIGITS / "cluster-step.yaml"'),
    "examples/digits/s3-step.yaml": ("tests/storage/test_examples_on_s3.py",
                                     'DIGITS / "s3-step.yaml"'),
    "examples/sales/score.yaml": ("tests/runner/test_examples.py", 'example / "score.yaml"'),
    "examples/sales/forecast.yaml": ("tests/runner/test_examples.py",
                                     'example / "forecast.yaml"'),
}


@pytest.mark.parametrize("path", EXAMPLE_STEPS, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_validates_and_is_run_by_a_test(path: Path) -> None:
    step = load_step(path)
    document = yaml.safe_load(path.read_text())
    assert step.name == document["metadata"]["name"]
    code = step.spec["code"]
    if code.get("sourceDirectory"):  # the entry script is where the step says
        assert (path.parent / code["sourceDirectory"] / code["entryScript"]).is_file()
    runner, mention = RUN_BY[str(path.relative_to(ROOT))]  # a new example needs a test
    assert mention in (ROOT / runner).read_text()


def test_digits_example_scores_every_image(tmp_path: Path) -> None:
    example = ROOT / "examples" / "digits"
    subprocess.run([sys.executable, str(example / "prepare.py")], check=True)
    output = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(example / "step.yaml"),
         "--output-uri", str(output), "--fresh"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    spec = importlib.util.spec_from_file_location("accuracy", example / "accuracy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _, held_out, count = module.accuracy(output / "parallel_run_step.txt",
                                         example / "data" / "labels.csv")
    assert count == 1797
    assert held_out > 0.9
    assert "1797 succeeded" in result.stdout


def run_example(step: Path, output: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(step),
         "--output-uri", str(output), "--fresh"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_sales_example_scores_by_bytes_and_fits_one_model_per_partition(tmp_path: Path) -> None:
    import json

    import numpy as np
    import pandas as pd

    example = ROOT / "examples" / "sales"
    subprocess.run([sys.executable, str(example / "generate.py")], check=True)
    sales = pd.concat([pd.read_csv(p, keep_default_na=False)
                       for p in sorted((example / "data" / "csv").glob("*.csv"))],
                      ignore_index=True)

    stdout = run_example(example / "score.yaml", tmp_path / "score")
    assert f"{len(sales)} succeeded" in stdout
    scores = pd.read_csv(tmp_path / "score" / "scores.csv")
    assert scores["id"].tolist() == sales["id"].tolist()  # every row once, in order
    revenue = (sales["units"] * sales["price"] * (1 - sales["discount"])).round(2)
    assert np.allclose(scores["revenue"], revenue)
    plan = json.loads((tmp_path / "score" / "_prs" / "plan.json").read_text())
    assert plan["miniBatches"] > 3  # split by bytes, not one per file

    run_example(example / "forecast.yaml", tmp_path / "forecast")
    forecasts = pd.read_parquet(tmp_path / "forecast" / "forecasts.parquet")
    assert sorted(forecasts["id"]) == sorted(sales["id"])
    models = sorted((tmp_path / "forecast" / "models").glob("*.json"))
    groups = sales.groupby(["store", "brand"]).size()
    assert len(models) == len(groups) == 12
    for path in models:
        model = json.loads(path.read_text())
        assert model["rows"] == groups[(model["store"], model["brand"])]
    merged = forecasts.merge(sales[["id", "units"]], on="id")
    model_error = (merged["fitted_units"] - merged["units"]).abs().mean()
    mean_error = (merged["units"] - merged["units"].mean()).abs().mean()
    assert model_error < mean_error / 2  # the per-partition models learned their trends
