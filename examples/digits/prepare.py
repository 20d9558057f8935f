"""Set up the digits example: train a small classifier and write the digit images.

Uses scikit-learn's bundled digits data (1,797 8x8 images), so nothing is downloaded.
    python examples/digits/prepare.py
writes data/digits/*.png (the input), data/labels.csv and models/digits.joblib (a side input).
"""

from __future__ import annotations

import csv
from pathlib import Path

import joblib
import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.svm import SVC

HERE = Path(__file__).resolve().parent
TRAIN_SIZE = 1000  # the rest is held out, so the reported accuracy means something


def train_model(path: Path) -> None:
    digits = load_digits()
    model = SVC(gamma=0.001).fit(digits.data[:TRAIN_SIZE], digits.target[:TRAIN_SIZE])
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)


def write_images(folder: Path, labels_path: Path) -> int:
    digits = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    with labels_path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "label", "held_out"])
        for index, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
            name = f"digit_{index:04d}.png"
            pixels = (image * 255 / 16).round().astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / name)
            writer.writerow([name, int(label), index >= TRAIN_SIZE])
    return len(digits.images)


if __name__ == "__main__":
    train_model(HERE / "models" / "digits.joblib")
    count = write_images(HERE / "data" / "digits", HERE / "data" / "labels.csv")
    print(f"wrote {count} images to {HERE / 'data' / 'digits'} and the model to models/")
