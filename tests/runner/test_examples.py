"""Every example step validates offline and runs to success with `prs run`."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from prs_runner.validation import load_step

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_STEPS = sorted(p for p in (ROOT / "examples").rglob("*.yaml")
                       if "kind: ParallelRunStep" in p.read_text())


def test_there_are_examples() -> None:
    assert EXAMPLE_STEPS


@pytest.mark.parametrize("path", EXAMPLE_STEPS, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_validates(path: Path) -> None:
    load_step(path)


def test_digits_example_scores_every_image(tmp_path: Path) -> None:
    example = ROOT / "examples" / "digits"
    subprocess.run([sys.executable, str(example / "prepare.py")], check=True)
    output = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "prs_runner.cli", "run", str(example / "step.yaml"),
         "--output", str(output), "--fresh"],
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
