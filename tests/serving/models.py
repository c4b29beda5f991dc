"""Tiny models for the serving tests: one that fails on purpose, one that is slow."""

from __future__ import annotations

import time
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


class SlowModel:
    """Predicts 0 after `SLOW_SECONDS` per call, whatever the batch: a server at capacity."""

    n_features_in_ = 3

    def predict(self, x: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
        time.sleep(SLOW_SECONDS)
        return np.zeros(x.shape[0], dtype=np.int64)


SLOW_SECONDS = 0.1


class SwappedLabels:
    """Wraps a binary classifier and answers the other class: a label-permuting version."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.n_features_in_ = model.n_features_in_
        self.classes_ = model.classes_

    def predict(self, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.asarray(self.classes_)[1 - self.model.predict(x)]
