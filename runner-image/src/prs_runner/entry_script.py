"""What an entry script may ask about where it runs: the public stand-in for Azure's
unpublished `EntryScript`. It reads the worker's environment, so it behaves the same under
`prs run` and in a pod.

    from prs_runner.entry_script import EntryScript
    entry = EntryScript()
    entry.logger.info("scoring in shard %d", entry.shard_index)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

LOGGER_NAME = "prs.entry_script"


def side_inputs_from_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """Side inputs by their spec name (PRS_SIDE_INPUT_NAMES lists `name=ENV_VAR` pairs)."""
    env = dict(os.environ) if env is None else env
    pairs = [p.split("=", 1) for p in env.get("PRS_SIDE_INPUT_NAMES", "").split(",") if "=" in p]
    return {name: env[var] for name, var in pairs if var in env}


class EntryScript:
    """Logger, output folder and identity of the worker process running the script."""

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger(LOGGER_NAME)

    @property
    def output_dir(self) -> str:
        return os.environ.get("PRS_OUTPUT_DIR", os.getcwd())

    @property
    def shard_index(self) -> int:
        return int(os.environ.get("PRS_SHARD_INDEX", "0"))

    @property
    def process_index(self) -> int:
        return int(os.environ.get("PRS_PROCESS_INDEX", "0"))

    @property
    def side_inputs(self) -> dict[str, str]:
        return side_inputs_from_env()


@dataclass(frozen=True)
class MiniBatchFiles:
    """`context.dataset`: the part of Azure's dataset object a script reads of its
    mini-batch: the input's files it covers, relative to the input (`to_path()`, with a
    leading '/', as Azure's FileDataset gives them)."""

    paths: tuple[str, ...]

    def to_path(self) -> list[str]:
        return ["/" + path.lstrip("/") for path in self.paths]


@dataclass
class RunContext:
    """The second argument of `run(mini_batch, context)` (Azure's `mini_batch_context`)."""

    minibatch_index: int
    shard_index: int
    process_index: int
    output_dir: str
    side_inputs: dict[str, str]
    partition_key_value: dict[str, Any] = field(default_factory=dict)
    dataset: MiniBatchFiles = field(default_factory=lambda: MiniBatchFiles(()))

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger(LOGGER_NAME)
