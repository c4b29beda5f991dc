"""Request payload to a float64 row matrix, with every client mistake a 400.

This is the signature check that lets the model skip its own validation: after
``check_rows`` the matrix is 2-D, C-contiguous float64 with the model's feature
count, 1..max_rows rows, and only finite values within the model's input limit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from coalmine_serving.errors import BadRequest
from coalmine_serving.model import ServedModel
from coalmine_serving.signature import quote

Matrix = npt.NDArray[np.float64]
Rows = npt.NDArray[Any]
"""A float64 Matrix, or a record array for a model with string inputs."""


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 naming the syntax problem."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if b"NaN" in body or b"Infinity" in body or "infinity" in str(exc):
            raise BadRequest("input contains NaN or infinity (not valid JSON)") from None
        raise BadRequest(f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest("the request body must be a JSON object")
    return doc


def to_array(data: Any, where: str) -> npt.NDArray[Any]:
    """A numeric numpy array from (nested) JSON lists, or a 400 saying why not."""
    if not isinstance(data, list):
        raise BadRequest(f"{where} must be a list of numbers, got {type(data).__name__}")
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError):
        raise BadRequest(f"{where} is ragged: rows have different lengths") from None
    if arr.dtype.kind not in "biuf":
        if arr.dtype.kind == "O":
            raise BadRequest(f"{where} holds nulls, objects or rows of different lengths")
        raise BadRequest(f"{where} holds non-numeric values (found {arr.dtype.kind!r} data)")
    return arr


def check_rows(x: npt.NDArray[Any], model: ServedModel, max_rows: int) -> Matrix:
    """Enforce the model signature on a 2-D array."""
    if x.ndim != 2:
        raise BadRequest(f"expected rows of {model.n_features} features, got a {x.ndim}-D array")
    rows, features = x.shape
    if rows == 0:
        raise BadRequest("empty batch: send at least one row")
    if features != model.n_features:
        raise BadRequest(f"expected {model.n_features} features per row, got {features}")
    if rows > max_rows:
        raise BadRequest(f"too many rows: {rows} > {max_rows} (--max-rows)", status=413)
    matrix = np.ascontiguousarray(x, dtype=np.float64)
    if not np.isfinite(matrix).all():
        raise BadRequest("input contains NaN or infinity")
    if model.input_limit != np.inf and np.abs(matrix).max() > model.input_limit:
        raise BadRequest(f"input value out of range: magnitude above {model.input_limit:.3g}")
    return matrix


def check_records(x: npt.NDArray[Any], model: ServedModel, max_rows: int) -> npt.NDArray[Any]:
    """The same limits for record rows, each numeric field checked and named."""
    if x.shape[0] == 0:
        raise BadRequest("empty batch: send at least one row")
    if x.shape[0] > max_rows:
        raise BadRequest(f"too many rows: {x.shape[0]} > {max_rows} (--max-rows)", status=413)
    assert x.dtype.names is not None
    for name in x.dtype.names:
        column = x[name]
        if column.dtype.kind != "f":
            known = model.categories.get(name)
            unknown = set() if known is None else set(column.tolist()) - known
            if unknown:
                raise BadRequest(
                    f"input {name!r}: unknown categories {quote(sorted(unknown))};"
                    f" the model knows {quote(sorted(known or ()))}"
                )
            continue
        if not np.isfinite(column).all():
            raise BadRequest(f"input {name!r} contains NaN or infinity")
        if np.abs(column).max() > model.input_limit:
            raise BadRequest(
                f"input {name!r}: value out of range: magnitude above {model.input_limit:.3g}"
            )
    return x
