"""The tools/build-*.sh scripts, run from the tests: each builds what a tier needs (or finds
it in its cache, then does nothing) and prints its path last."""

from __future__ import annotations

import subprocess
from pathlib import Path


def run_build_script(script: Path, timeout: float, error: type[Exception]) -> Path:
    """The path SCRIPT prints last; ERROR, with the script's name and the tail of its
    output, when it cannot run, fails, times out or prints nothing."""
    try:
        done = subprocess.run(["bash", str(script)], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise error(f"{script.name} did not finish in {timeout:.0f}s") from exc
    except OSError as exc:
        raise error(f"{script.name} could not run: {exc}") from exc
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise error(f"{script.name} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return Path(lines[-1])
