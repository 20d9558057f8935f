"""Digit identification, in the style of Azure ML's ParallelRunStep sample."""

from __future__ import annotations

import argparse
import os
from typing import Any

import joblib
import numpy as np
from PIL import Image

from prs_runner.entry_script import EntryScript

model: Any = None
args: argparse.Namespace


def init() -> None:
    global model, args
    parser = argparse.ArgumentParser()
    parser.add_argument("--label-prefix", default="")
    args, _ = parser.parse_known_args()
    entry = EntryScript()
    model = joblib.load(entry.side_inputs["model"])
    entry.logger.info("model loaded in shard %d process %d", entry.shard_index,
                      entry.process_index)


def run(mini_batch: list[str]) -> list[str]:
    pixels = np.stack([np.asarray(Image.open(path), dtype=np.float64) * 16 / 255
                       for path in mini_batch])
    predictions = model.predict(pixels.reshape(len(mini_batch), -1))
    return [f"{os.path.basename(path)}: {args.label_prefix}{digit}"
            for path, digit in zip(mini_batch, predictions, strict=True)]
