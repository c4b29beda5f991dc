"""Micro-benchmark: where scikit-learn's per-call ``predict`` time goes.

Runs with whatever scikit-learn the interpreter has, so the same file compares
versions (``python predict_overhead.py`` in two virtualenvs). It times the public
``predict`` against the same call inside ``config_context`` (validation and
parameter checks skipped) and against the fitted arrays used directly, the way
``coalmine_serving.fastpath`` does.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import sklearn
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression


def per_call_us(fn: Callable[[], Any], seconds: float = 1.0) -> float:
    """Median-of-5 microseconds per call, each round at least seconds / 5 long."""
    rounds = []
    for _ in range(5):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / 5
        while True:
            fn()
            n += 1
            if time.perf_counter() >= deadline:
                break
        rounds.append((time.perf_counter() - start) / n * 1e6)
    return float(np.median(rounds))


def main() -> None:
    x, y = make_classification(n_samples=10000, n_features=20, random_state=0)
    lr = LogisticRegression(max_iter=1000).fit(x, y)
    rf = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0).fit(x, y)
    results: dict[str, float] = {}
    quiet = {"assume_finite": True, "skip_parameter_validation": True}
    for rows in (1, 64):
        batch = np.ascontiguousarray(x[:rows])
        batch32 = batch.astype(np.float32)
        results[f"lr.predict rows={rows}"] = per_call_us(lambda b=batch: lr.predict(b))
        with sklearn.config_context(**quiet):
            results[f"lr.predict+config_context rows={rows}"] = per_call_us(
                lambda b=batch: lr.predict(b)
            )
        results[f"lr direct matmul rows={rows}"] = per_call_us(
            lambda b=batch, c=lr.coef_.T, i=lr.intercept_: lr.classes_[
                ((b @ c + i)[:, 0] > 0).astype(np.intp)
            ]
        )
        results[f"rf.predict rows={rows}"] = per_call_us(lambda b=batch: rf.predict(b))
        with sklearn.config_context(**quiet):
            results[f"rf.predict+config_context rows={rows}"] = per_call_us(
                lambda b=batch: rf.predict(b)
            )
        results[f"rf direct tree_.predict rows={rows}"] = per_call_us(
            lambda b=batch32, trees=[e.tree_ for e in rf.estimators_]: rf.classes_[
                np.argmax(sum(t.predict(b) for t in trees), axis=1)
            ]
        )
    print(json.dumps({"sklearn": sklearn.__version__, "python": sys.version.split()[0]}))
    for name, us in results.items():
        print(f"{name:45s} {us:10.1f} us")


if __name__ == "__main__":
    main()
