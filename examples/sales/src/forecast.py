"""Many models: one mini-batch per store x brand (partitionKeys), one model per partition.

Each run() fits units ~ day + price for its partition, saves the model under the step's
output folder and returns the fitted units of every row (one element per input row).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pandas as pd


def run(mini_batch: pd.DataFrame, context: Any) -> pd.DataFrame:
    keys = context.partition_key_value
    features = np.column_stack([np.ones(len(mini_batch)), mini_batch["day"], mini_batch["price"]])
    coefficients, *_ = np.linalg.lstsq(features, mini_batch["units"].to_numpy(float), rcond=None)
    models = os.path.join(context.output_dir, "models")
    os.makedirs(models, exist_ok=True)
    name = f"store={keys['store']}-brand={keys['brand']}.json"
    with open(os.path.join(models, name), "w") as stream:
        json.dump({**keys, "rows": len(mini_batch), "coefficients": coefficients.tolist()},
                  stream)
    context.logger.info("partition %s: %d rows", keys, len(mini_batch))
    return pd.DataFrame({
        "id": mini_batch["id"].to_numpy(),
        "store": keys["store"],
        "brand": keys["brand"],
        "fitted_units": features @ coefficients,
    })
