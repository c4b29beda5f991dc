"""V2 input tensors to model rows: each tensor checked against its datatype, then
placed by name when the model has names, by position when it has none."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from coalmine_serving.errors import BadRequest
from coalmine_serving.inputs import to_array
from coalmine_serving.signature import Inputs, quote

Tensor = tuple[str, npt.NDArray[Any]]
INT_TYPES = {f"{s}INT{b}" for s in ("", "U") for b in (8, 16, 32, 64)}
FLOAT_TYPES = {"FP16", "FP32", "FP64"}


def decode_tensor(tensor: Any, index: int) -> Tensor:
    """One request input as (name, array shaped as declared), or a 400 naming it."""
    if not isinstance(tensor, dict):
        raise BadRequest(f"inputs[{index}] must be an object with name, shape, datatype, data")
    name = tensor.get("name", f"inputs[{index}]")
    where = f"input {name!r}"
    shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
    if data is None:
        raise BadRequest(f"{where} has no 'data'")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise BadRequest(f"{where} needs 'shape', a list of non-negative integers")
    if datatype == "BYTES":
        raise BadRequest(f"{where}: datatype BYTES is not supported; send numeric tensors")
    if datatype != "BOOL" and datatype not in INT_TYPES and datatype not in FLOAT_TYPES:
        raise BadRequest(f"{where}: unknown datatype {datatype!r}")
    arr = to_array(data, where)
    allowed = "b" if datatype == "BOOL" else "biu" if datatype in INT_TYPES else "biuf"
    if arr.size and arr.dtype.kind not in allowed:
        raise BadRequest(f"{where}: data does not match datatype {datatype}")
    if arr.size != int(np.prod(shape)):
        raise BadRequest(
            f"{where}: shape {shape} needs {int(np.prod(shape))} values, got {arr.size}"
        )
    return str(name), arr.reshape(shape)


def rows(tensors: list[Tensor], n_features: int, inputs: Inputs | None) -> npt.NDArray[Any]:
    """The request's rows in the model's column order.

    A single matrix is taken as is, whatever its name: as wide as the model it
    holds every feature in order (the fast path), otherwise ``check_rows`` says
    what is wrong with it. Other tensors are one feature column each, placed by
    name when the model has names and in request order when it has none.
    """
    if len(tensors) == 1:
        arr = tensors[0][1]
        one_column = arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1 and n_features > 1)
        if inputs is None or not one_column:
            return arr
    columns = [_column(name, arr) for name, arr in tensors]
    if inputs is not None:
        columns = _by_name([name for name, _ in tensors], columns, inputs)
    if len({c.shape[0] for c in columns}) != 1:
        raise BadRequest("the inputs must all have the same number of rows")
    return np.column_stack(columns)


def _column(name: str, arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if arr.ndim == 2 and arr.shape[1] == 1:
        return arr.reshape(-1)
    if arr.ndim != 1:
        raise BadRequest(
            f"input {name!r} has shape {list(arr.shape)}: with several inputs, each must be"
            " one feature column shaped [rows] or [rows, 1] with the same number of rows"
        )
    return arr


def _by_name(
    names: list[str], columns: list[npt.NDArray[Any]], inputs: Inputs
) -> list[npt.NDArray[Any]]:
    placed: list[npt.NDArray[Any] | None] = [None] * len(inputs.names)
    for name, column in zip(names, columns, strict=True):
        j = inputs.index.get(name)
        if j is None:
            raise BadRequest(f"unknown input {name!r}; the model takes {quote(inputs.names)}")
        if placed[j] is not None:
            raise BadRequest(f"input {name!r} is given twice")
        placed[j] = column
    missing = [n for n, c in zip(inputs.names, placed, strict=True) if c is None]
    if missing:
        raise BadRequest(f"missing input {quote(missing)}: the model takes {len(placed)} inputs")
    return [c for c in placed if c is not None]
