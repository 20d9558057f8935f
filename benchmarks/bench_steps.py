"""Step folders for the benchmarks: input files, an entry script and step.yaml."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


def compile_runner() -> None:
    """Bytecode for the runner's modules, as any installed copy has (pip and the image
    compile at install time; an editable install under PYTHONDONTWRITEBYTECODE never
    does, and every process would compile them again: 60-80 ms each)."""
    import compileall

    import prs_runner

    for folder in prs_runner.__path__:
        compileall.compile_dir(folder, quiet=1)


compile_runner()  # every benchmark imports this module before it times anything

def write_step(root: Path, script: str, files: int, **spec: Any) -> Path:
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (data / f"f{i:06d}.txt").write_text(str(i))
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / "score.py").write_text(script)
    document = {
        "apiVersion": "parallelrun.io/v1alpha1",
        "kind": "ParallelRunStep",
        "metadata": {"name": "bench"},
        "spec": {"code": {"entryScript": "score.py", "sourceDirectory": "./src"},
                 "input": {"type": "files", "uri": "./data"}, "output": {"uri": "./out"},
                 "allowReuse": False, **spec},
    }
    (root / "step.yaml").write_text(yaml.safe_dump(document))
    return root / "step.yaml"


def time_prs_run(step: Path) -> float:
    """Wall time of a whole `prs run`, process start to exit, as a user sees it."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "prs_runner.commands.prs_cli", "run", str(step), "--fresh"],
        capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"prs run failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def data_paths(root: Path) -> list[str]:
    return sorted(str(p) for p in (root / "data").iterdir())


def time_pool(function: Callable[[str], str], paths: list[str], processes: int) -> float:
    """The baseline: multiprocessing.Pool(PROCESSES).imap(chunksize=1) over PATHS."""
    started = time.perf_counter()
    with multiprocessing.Pool(processes) as pool:
        for _ in pool.imap(function, paths, chunksize=1):
            pass
    return time.perf_counter() - started
