"""A pipeline with a categorical column: its training frame, signature and V2 requests.

Shared by the REST and gRPC tests of string inputs; the fitted pipeline and its
servers are fixtures in conftest.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SIGNATURE = {
    "inputs": [
        {"name": "colour", "datatype": "BYTES"},
        {"name": "size", "datatype": "FP64"},
        {"name": "count", "datatype": "INT64"},
    ],
    "output": {"kind": "classification"},
}


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue"], rows),
            "size": rng.normal(size=rows),
            "count": rng.integers(0, 9, rows),
        }
    )


def per_column(data: pd.DataFrame, order: list[str], *outputs: str) -> dict:
    datatypes = {"colour": "BYTES", "size": "FP64", "count": "INT64"}
    return {
        "inputs": [
            {"name": c, "shape": [len(data), 1], "datatype": datatypes[c],
             "data": data[c].tolist()}
            for c in order
        ],
        "outputs": [{"name": o} for o in outputs or ["predict"]],
    }  # fmt: skip
