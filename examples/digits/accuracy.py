"""Accuracy of the digits step's output against the known labels.
    python examples/digits/accuracy.py [OUTPUT_FILE]
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def accuracy(output_file: Path, labels_file: Path) -> tuple[float, float, int]:
    """(accuracy on all images, on the held-out images, number of predictions)."""
    with labels_file.open() as stream:
        rows = {r["file"]: r for r in csv.DictReader(stream)}
    predictions = dict(line.split(": ") for line in output_file.read_text().splitlines())
    right = [predictions[name] == row["label"] for name, row in rows.items() if name in predictions]
    held = [predictions[name] == row["label"] for name, row in rows.items()
            if name in predictions and row["held_out"] == "True"]
    return sum(right) / len(right), sum(held) / max(len(held), 1), len(predictions)


if __name__ == "__main__":
    default = HERE / "out" / "predict-digits" / "parallel_run_step.txt"
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    overall, held_out, count = accuracy(output, HERE / "data" / "labels.csv")
    print(f"{count} predictions: accuracy {overall:.1%} overall, {held_out:.1%} on held-out images")
