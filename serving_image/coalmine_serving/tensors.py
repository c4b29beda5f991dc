"""V2 input tensors to model rows: each tensor checked against its datatype, then
placed by name when the model has names, by position when it has none.

Rows are a float64 matrix for numeric models. A model with string inputs takes
a record array instead, one field per input in the model's order, which
batches like a matrix and becomes the DataFrame the model was fitted on.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from coalmine_serving import binary
from coalmine_serving.datatypes import NUMPY_TYPES, category, check_fits, strings
from coalmine_serving.errors import BadRequest
from coalmine_serving.inputs import Rows, check_records, check_rows, to_array
from coalmine_serving.model import ServedModel
from coalmine_serving.signature import Inputs, quote

NO_INPUTS = "missing inputs: the request needs a non-empty 'inputs' list"


class Tensor(NamedTuple):
    name: str
    datatype: str
    data: npt.NDArray[Any]


def decode_tensor(tensor: Any, index: int, chunks: binary.Chunks | None = None) -> Tensor:
    """One request input with its data shaped as declared, or a 400 naming it.

    ``chunks`` is the binary part of a request in the binary extension, from
    which inputs with ``parameters.binary_data_size`` take their bytes.
    """
    if not isinstance(tensor, dict):
        raise BadRequest(f"inputs[{index}] must be an object with name, shape, datatype, data")
    name = tensor.get("name", f"inputs[{index}]")
    where = f"input {name!r}"
    shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
    parameters = tensor.get("parameters")
    binary_size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if data is None and binary_size is None:
        raise BadRequest(f"{where} has no 'data'")
    shape, datatype = check_header(shape, datatype, where)
    if binary_size is not None:
        if chunks is None:
            raise BadRequest(
                f"{where} has binary_data_size, but the request has no"
                " Inference-Header-Content-Length"
            )
        if data is not None:
            raise BadRequest(f"{where} has both 'data' and binary_data_size")
        arr = binary.tensor(chunks.take(binary_size, where), datatype, shape, where)
        return Tensor(str(name), datatype, arr)
    if datatype == "BYTES":
        arr = strings(data, where)
    else:
        arr = to_array(data, where)
        if arr.size:
            check_fits(arr, datatype, where)
    return Tensor(str(name), datatype, shaped(arr, shape, where))


def check_header(shape: Any, datatype: Any, where: str) -> tuple[list[int], str]:
    """``shape`` and ``datatype`` when the shape is a list of non-negative integers and the
    datatype is known; a 400 saying which is wrong otherwise."""
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise BadRequest(f"{where} needs 'shape', a list of non-negative integers")
    if datatype != "BYTES" and datatype not in NUMPY_TYPES:
        raise BadRequest(f"{where}: unknown datatype {datatype!r}")
    return shape, datatype


def shaped(arr: npt.NDArray[Any], shape: list[int], where: str) -> npt.NDArray[Any]:
    """Flat or nested data in its declared shape; a 400 when the value count differs."""
    size = math.prod(shape)  # np.prod costs a third of a one-row request's decode
    if arr.size != size:
        raise BadRequest(f"{where}: shape {shape} needs {size} values, got {arr.size}")
    return arr.reshape(shape)


def model_rows(tensors: list[Tensor], model: ServedModel, max_rows: int) -> Rows:
    """The decoded inputs of one request as the model's checked rows, whatever the protocol."""
    if not tensors:
        raise BadRequest(NO_INPUTS)
    if model.records:
        assert model.inputs is not None
        return check_records(records(tensors, model.inputs), model, max_rows)
    return check_rows(rows(tensors, model.n_features, model.inputs), model, max_rows)


def rows(tensors: list[Tensor], n_features: int, inputs: Inputs | None) -> npt.NDArray[Any]:
    """The request's numeric rows in the model's column order.

    A single matrix is taken as is, whatever its name: as wide as the model it
    holds every feature in order (the fast path), otherwise ``check_rows`` says
    what is wrong with it. Other tensors are one feature column each, placed by
    name when the model has names and in request order when it has none.
    """
    if len(tensors) == 1:
        arr = tensors[0].data
        one_column = arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1 and n_features > 1)
        if inputs is None or not one_column:
            _check_matrix(tensors[0], inputs)
            return arr
    if inputs is None:
        for tensor in tensors:
            _check_matrix(tensor, None)
        columns = [_column(t) for t in tensors]
    else:
        columns = _by_name(tensors, inputs)
    _same_length(columns)
    return np.column_stack(columns)


def records(tensors: list[Tensor], inputs: Inputs) -> npt.NDArray[Any]:
    """Rows for a model with string inputs: one record field per input, by name."""
    columns = _by_name(tensors, inputs)
    _same_length(columns)
    fields = [
        (name, np.object_ if datatype == "BYTES" else np.float64)
        for name, datatype in zip(inputs.names, inputs.datatypes, strict=True)
    ]
    out = np.empty(columns[0].shape[0], dtype=fields)
    for (name, _), column in zip(fields, columns, strict=True):
        out[name] = column
    return out


def _refuse(tensor: Tensor, takes: str) -> None:
    raise BadRequest(f"input {tensor.name!r} is {tensor.datatype}, but the model {takes}")


def _check_matrix(tensor: Tensor, inputs: Inputs | None) -> None:
    """Numbers for a numeric model; booleans too unless a signature says otherwise."""
    if tensor.datatype == "BYTES":
        _refuse(tensor, "takes numbers")
    if inputs is not None and inputs.declared:
        sent = category(tensor.datatype)
        for name, expected in zip(inputs.names, inputs.datatypes, strict=True):
            if category(expected) != sent:
                _refuse(tensor, f"takes {expected} for input {name!r}")


def _column(tensor: Tensor) -> npt.NDArray[Any]:
    arr = tensor.data
    if arr.ndim == 2 and arr.shape[1] == 1:
        return arr.reshape(-1)
    if arr.ndim != 1:
        raise BadRequest(
            f"input {tensor.name!r} has shape {list(arr.shape)}: with several inputs, each must"
            " be one feature column shaped [rows] or [rows, 1] with the same number of rows"
        )
    return arr


def _same_length(columns: list[npt.NDArray[Any]]) -> None:
    if len({c.shape[0] for c in columns}) != 1:
        raise BadRequest("the inputs must all have the same number of rows")


def _by_name(tensors: list[Tensor], inputs: Inputs) -> list[npt.NDArray[Any]]:
    placed: list[npt.NDArray[Any] | None] = [None] * len(inputs.names)
    for tensor in tensors:
        j = inputs.index.get(tensor.name)
        if j is None:
            raise BadRequest(
                f"unknown input {tensor.name!r}; the model takes {quote(inputs.names)}"
            )
        if placed[j] is not None:
            raise BadRequest(f"input {tensor.name!r} is given twice")
        expected = inputs.datatypes[j]
        sent = category(tensor.datatype)
        if sent != category(expected) and not (sent == "bool" and not inputs.declared):
            _refuse(tensor, f"takes {expected} for it")
        placed[j] = _column(tensor)
    missing = [n for n, c in zip(inputs.names, placed, strict=True) if c is None]
    if missing:
        raise BadRequest(f"missing input {quote(missing)}: the model takes {len(placed)} inputs")
    return [c for c in placed if c is not None]
