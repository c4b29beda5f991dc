"""The validation-free predict paths agree exactly with scikit-learn's predict."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier
from sklearn.tree import DecisionTreeClassifier

from coalmine_serving import fastpath
from coalmine_serving.model import from_object

X, Y = make_classification(n_samples=300, n_features=6, n_informative=4, random_state=0)
X3, Y3 = make_classification(
    n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0
)
XR, YR = make_regression(n_samples=300, n_features=6, random_state=0)

ESTIMATORS: list[Any] = [
    LogisticRegression().fit(X, Y),
    LogisticRegression().fit(X3, Y3),
    SGDClassifier(random_state=0).fit(X3, np.array(["a", "b", "c"])[Y3]),
    RandomForestClassifier(n_estimators=7, max_depth=5, random_state=0).fit(X3, Y3),
    ExtraTreesClassifier(n_estimators=5, random_state=0).fit(X, Y),
    RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0).fit(XR, YR),
    LinearRegression().fit(XR, YR),
    Ridge().fit(XR, YR),
]

rows = arrays(
    np.float64,
    st.tuples(st.integers(1, 40), st.just(6)),
    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
@settings(max_examples=60, deadline=None)
@given(x=rows)
def test_fast_path_equals_predict(estimator: Any, x: np.ndarray) -> None:
    fast = fastpath.build(estimator)
    assert fast is not None
    np.testing.assert_array_equal(fast(np.ascontiguousarray(x)), estimator.predict(x))


def test_unknown_estimators_use_the_public_predict() -> None:
    tree = DecisionTreeClassifier(max_depth=3).fit(X, Y)
    assert fastpath.build(tree) is None
    model = from_object(tree, "skops")
    assert not model.fast
    np.testing.assert_array_equal(model.predict(X[:5]), tree.predict(X[:5]))


def test_subclass_overriding_predict_is_not_shortcut() -> None:
    class Shifted(LogisticRegression):
        def predict(self, x: Any) -> Any:
            return super().predict(x) + 10

    est = Shifted().fit(X, Y)
    assert fastpath.build(est) is None
    assert from_object(est, "skops").predict(X[:1])[0] >= 10
