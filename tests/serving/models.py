"""Tiny models for the serving tests, and a model that fails on purpose."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

POISON = 13.0  # a feature value that makes FailingModel raise


class FailingModel:
    """Predicts 0 except for rows containing POISON, where it raises."""

    n_features_in_ = 3

    def predict(self, x: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
        if np.any(x == POISON):
            raise RuntimeError("poisoned row")
        return np.zeros(x.shape[0], dtype=np.int64)
