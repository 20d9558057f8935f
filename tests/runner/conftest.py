"""Real `prs run` processes over real files in a temporary folder."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml


@dataclass
class StepDir:
    root: Path

    @property
    def step(self) -> Path:
        return self.root / "step.yaml"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(self.step), *args],
            capture_output=True, text=True, timeout=timeout,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(self.step), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def output_lines(self, name: str = "parallel_run_step.txt") -> list[str]:
        return (self.out / name).read_text().splitlines()

    def job_result(self) -> dict[str, Any]:
        return json.loads((self.out / "_prs/report/job_result.json").read_text())  # type: ignore[no-any-return]

    def report_rows(self) -> list[dict[str, str]]:
        import csv

        with (self.out / "_prs/report/processed_mini_batches.csv").open() as stream:
            return list(csv.DictReader(stream))

    def marks(self, name: str) -> list[str]:
        """Lines the test scripts append to marks/<name> (one per call)."""
        path = self.root / "marks" / name
        return path.read_text().split() if path.exists() else []


MakeStep = Callable[..., StepDir]

MARK_FUNCTION = '''
import os as _os
def mark(name, value=""):
    folder = _os.path.join(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))), "marks")
    _os.makedirs(folder, exist_ok=True)
    with open(_os.path.join(folder, name), "a") as _f:
        _f.write(f"{value or _os.getpid()}\\n")
'''


@pytest.fixture
def make_step(tmp_path: Path) -> MakeStep:
    """A step folder: `files` input files (content = their number), the script, step.yaml."""

    def make(script: str, files: int = 20, **spec: Any) -> StepDir:
        data = tmp_path / "data"
        data.mkdir(exist_ok=True)
        for i in range(files):
            (data / f"item{i:04d}.txt").write_text(f"{i}\n")
        src = tmp_path / "src"
        src.mkdir(exist_ok=True)
        (src / "score.py").write_text(MARK_FUNCTION + textwrap.dedent(script))
        document = {
            "apiVersion": "parallelrun.io/v1alpha1",
            "kind": "ParallelRunStep",
            "metadata": {"name": "test-step"},
            "spec": {
                "code": {"entryScript": "score.py", "sourceDirectory": "./src"},
                "input": {"type": "files", "uri": "./data"},
                "output": {"uri": "./out"},
                "miniBatchSize": "2",
                **spec,
            },
        }
        (tmp_path / "step.yaml").write_text(yaml.safe_dump(document))
        return StepDir(tmp_path)

    return make
