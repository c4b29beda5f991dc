"""Models fitted on a pandas DataFrame are called with one, holding the columns they know.

Pipelines select columns by name (ColumnTransformer) and their encoders expect
the strings they were fitted on, so a matrix would fail or, worse, be read by
position. The fitted encoders also tell which columns hold strings, and give
the load's self-test a category each of those columns knows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from coalmine_serving.signature import Inputs


def as_frame(x: npt.NDArray[Any], columns: list[str]) -> pd.DataFrame:
    """A DataFrame of a float matrix with these columns, or of a record array's fields."""
    if x.dtype.names is not None:
        return pd.DataFrame(x)
    return pd.DataFrame(x, columns=columns)


def string_categories(estimator: Any) -> dict[str, str]:
    """A known category for each input column a fitted encoder took as strings."""
    found: dict[str, str] = {}
    for name, values, _ in _string_encodings(estimator):
        found.setdefault(name, str(values[0]))
    return found


def strict_categories(estimator: Any) -> dict[str, frozenset[str]]:
    """The categories of each string column whose encoder raises on an unknown one.

    Checked before the model runs, an unknown category is the client's 400, not
    the model's 500 (which would count against the rollout's error rate).
    """
    found: dict[str, frozenset[str]] = {}
    for name, values, strict in _string_encodings(estimator):
        if strict:
            known = frozenset(str(v) for v in values)
            found[name] = found[name] & known if name in found else known
    return found


def _string_encodings(estimator: Any) -> Iterator[tuple[str, npt.NDArray[Any], bool]]:
    """(column, fitted categories, unknown ones refused) for each string-encoded column."""
    for part in _parts(estimator):
        categories = getattr(part, "categories_", None)
        names = getattr(part, "feature_names_in_", None)
        if categories is None or names is None:
            continue
        strict = getattr(part, "handle_unknown", "error") == "error"
        for name, fitted in zip(names, categories, strict=False):
            values = np.asarray(fitted)
            if values.dtype.kind in "OUS" and len(values):
                yield str(name), values, strict


def probe(inputs: Inputs, estimator: Any) -> npt.NDArray[Any]:
    """Two self-test records: zeros, and a category the model knows for each string."""
    known = string_categories(estimator)
    fields = [
        (name, np.object_ if datatype == "BYTES" else np.float64)
        for name, datatype in zip(inputs.names, inputs.datatypes, strict=True)
    ]
    out = np.zeros(2, dtype=fields)
    for name, kind in fields:
        if kind is np.object_:
            out[name] = known.get(name, "")
    return out


def _parts(estimator: Any) -> Iterator[Any]:
    """The estimator and those nested in fitted pipelines, column transformers and unions."""
    yield estimator
    for _, step in getattr(estimator, "steps", []):
        yield from _parts(step)
    for _, transformer, *_ in getattr(estimator, "transformers_", []):
        yield from _parts(transformer)
    for _, transformer in getattr(estimator, "transformer_list", []):
        yield from _parts(transformer)
