"""Validation-free predict paths for common fitted scikit-learn estimators.

scikit-learn 1.9 spends most of a small ``predict`` call outside the maths:
array-API namespace dispatch and ``check_array`` for linear models, and for
forests one joblib task per tree that copies the global config and rebuilds the
warning filters. The server has already checked shape, dtype and finiteness,
so these paths use the fitted arrays directly. Each is chosen only when the
estimator's class does not override the method it replaces, and the caller
keeps it only if it matches the public ``predict`` exactly on a self-test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble._forest import ForestClassifier, ForestRegressor
from sklearn.linear_model._base import LinearClassifierMixin, LinearModel

Predict = Callable[[npt.NDArray[np.float64]], npt.NDArray[Any]]


def build(estimator: Any) -> Predict | None:
    """A fast predict for ``estimator``, or None when none is known to be exact."""
    cls = type(estimator)
    if isinstance(estimator, LinearClassifierMixin) and _inherits(
        cls, LinearClassifierMixin, "predict", "decision_function"
    ):
        return _linear_classifier(estimator)
    if (
        isinstance(estimator, LinearModel)
        and _inherits(cls, LinearModel, "_decision_function")
        and _qualname(cls.predict) in _LINEAR_MODEL_PREDICTS
    ):
        return _linear_regressor(estimator)
    if (
        isinstance(estimator, ForestClassifier)
        and _inherits(cls, ForestClassifier, "predict", "predict_proba")
        and estimator.n_outputs_ == 1
    ):
        return _forest_classifier(estimator)
    if (
        isinstance(estimator, ForestRegressor)
        and _inherits(cls, ForestRegressor, "predict")
        and estimator.n_outputs_ == 1
    ):
        return _forest_regressor(estimator)
    return None


# scikit-learn's own predict overrides that only delegate to LinearModel.predict.
_LINEAR_MODEL_PREDICTS = {
    "sklearn.linear_model._base.LinearModel.predict",
    "sklearn.linear_model._base.MultiOutputLinearModel.predict",
    "sklearn.linear_model._ridge.Ridge.predict",
}


def _qualname(function: Any) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def _inherits(cls: type, base: type, *methods: str) -> bool:
    return all(getattr(cls, m, None) is getattr(base, m, None) for m in methods)


def _linear_classifier(est: Any) -> Predict:
    # The same operands and operations as decision_function, so rounding is identical.
    coef_t = est.coef_.T
    intercept = est.intercept_
    classes = np.asarray(est.classes_)
    if coef_t.shape[1] == 1:

        def binary(x: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
            scores = x @ coef_t + intercept
            return np.asarray(classes[(scores[:, 0] > 0).astype(np.intp)])

        return binary

    def multiclass(x: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        return np.asarray(classes[np.argmax(x @ coef_t + intercept, axis=1)])

    return multiclass


def _linear_regressor(est: Any) -> Predict:
    coef = est.coef_ if est.coef_.ndim == 1 else est.coef_.T
    intercept = est.intercept_

    def predict(x: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        return np.asarray(x @ coef + intercept)

    return predict


def _forest_classifier(est: Any) -> Predict | None:
    trees = [e.tree_ for e in est.estimators_]
    n_classes = int(est.n_classes_)
    # Since scikit-learn 1.4 classifier trees store class fractions per node; older
    # ones store counts and normalise per call, which this path would not repeat.
    if not all(np.allclose(t.value[:, 0, :].sum(axis=1), 1.0) for t in trees):
        return None
    classes = np.asarray(est.classes_)
    count = float(len(trees))

    def predict(x: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        total = np.zeros((x32.shape[0], n_classes))
        for tree in trees:
            total += tree.predict(x32)[:, :n_classes]
        return np.asarray(classes[np.argmax(total / count, axis=1)])

    return predict


def _forest_regressor(est: Any) -> Predict:
    trees = [e.tree_ for e in est.estimators_]
    count = float(len(trees))

    def predict(x: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        total = np.zeros(x32.shape[0])
        for tree in trees:
            total += tree.predict(x32)[:, 0]
        return total / count

    return predict
