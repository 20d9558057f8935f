"""The `helm test` step's entry script: each input file becomes one line of the output."""

from __future__ import annotations

import os


def init() -> None:
    """Nothing to load: the test checks that pods start, read their input and report."""


def run(mini_batch: list[str]) -> list[str]:
    lines = []
    for path in mini_batch:
        with open(path, encoding="utf-8") as stream:
            lines.append(f"{os.path.basename(path)}: {stream.read().strip().upper()}")
    return lines
