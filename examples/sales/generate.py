"""Write the sales example's input: synthetic daily sales of several stores x brands.

    python examples/sales/generate.py [--rows 300000]

writes data/csv/sales-<n>.csv (the same rows split into a few files, for the scoring step)
and data/parquet/store=<s>/brand=<b>/part-0.parquet (hive-style folders, for the per-partition
step). Deterministic (seeded), a few seconds.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
STORES = (3, 7, 12, 21)
BRANDS = ("acme", "globex", "initech")
CSV_FILES = 3


def sales(rows: int, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    store = rng.choice(STORES, rows)
    brand = rng.choice(BRANDS, rows)
    day = rng.integers(0, 730, rows)
    price = np.round(rng.uniform(2, 40, rows), 2)
    # Each store x brand has its own trend: what the per-partition models learn.
    trend = (store % 5 + 1) * 0.01 + np.array([BRANDS.index(b) for b in brand]) * 0.02
    units = np.maximum(0, np.round(20 + trend * day - 0.3 * price + rng.normal(0, 2, rows)))
    notes = np.array(["", "promo, weekend", 'display "end cap"', "late\ndelivery"])
    return pd.DataFrame({
        "id": np.arange(rows), "store": store, "brand": brand, "day": day, "price": price,
        "discount": np.round(rng.uniform(0, 0.3, rows), 2), "units": units.astype(np.int64),
        "note": notes[rng.integers(0, len(notes), rows)],
    })


def write(frame: pd.DataFrame, data: Path) -> None:
    shutil.rmtree(data, ignore_errors=True)
    (data / "csv").mkdir(parents=True)
    bounds = np.linspace(0, len(frame), CSV_FILES + 1).astype(int)
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
        frame.iloc[start:end].to_csv(data / "csv" / f"sales-{index}.csv", index=False)
    for (store, brand), part in frame.groupby(["store", "brand"]):
        folder = data / "parquet" / f"store={store}" / f"brand={brand}"
        folder.mkdir(parents=True)
        part.drop(columns=["store", "brand"]).to_parquet(folder / "part-0.parquet", index=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--data", type=Path, default=HERE / "data")
    args = parser.parse_args()
    write(sales(args.rows), args.data)
    print(f"{args.rows} rows of {len(STORES)} stores x {len(BRANDS)} brands in {args.data}")


if __name__ == "__main__":
    main()
