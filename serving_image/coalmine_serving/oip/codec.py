"""ModelInferRequest to model rows, and model answers to a ModelInferResponse.

Only the tensors' wire form is gRPC's own: typed ``contents`` (one field per
datatype family, FP16 has none) or ``raw_input_contents`` (the binary
extension's layout). From decoded tensors on, the REST checks and messages
apply unchanged. Answers always travel in ``raw_output_contents``, as Triton
sends them: its client reads nothing else for numbers, and KServe's reads both.
``predict_proba`` carries its class names as ``parameters.classes``, a JSON
array in a string parameter (InferParameter holds no lists).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from coalmine_serving import binary, outputs
from coalmine_serving.datatypes import NUMPY_TYPES, check_fits
from coalmine_serving.errors import BadRequest
from coalmine_serving.inputs import Rows
from coalmine_serving.model import ServedModel
from coalmine_serving.oip import inference_pb2 as pb
from coalmine_serving.tensors import Tensor, check_header, model_rows, shaped

FIELDS: dict[str, tuple[str, np.dtype[Any]]] = {
    datatype: (field, np.dtype(dtype))
    for datatypes, field, dtype in [
        (("BOOL",), "bool_contents", np.bool_),
        (("INT8", "INT16", "INT32"), "int_contents", np.int32),
        (("INT64",), "int64_contents", np.int64),
        (("UINT8", "UINT16", "UINT32"), "uint_contents", np.uint32),
        (("UINT64",), "uint64_contents", np.uint64),
        (("FP32",), "fp32_contents", np.float32),
        (("FP64",), "fp64_contents", np.float64),
        (("BYTES",), "bytes_contents", np.object_),
    ]
    for datatype in datatypes
}
"""The ``contents`` field each datatype's values go in, and how they arrive."""


def decode(
    request: pb.ModelInferRequest, model: ServedModel, max_rows: int
) -> tuple[Rows, tuple[str, ...]]:
    """The request's rows and the outputs it wants, or a 400 naming what is wrong."""
    wanted = outputs.requested([out.name for out in request.outputs], model)
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise BadRequest(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs:"
            " send one per input, or none"
        )
    tensors = [
        _tensor(tensor, i, raw[i] if raw else None) for i, tensor in enumerate(request.inputs)
    ]
    return model_rows(tensors, model, max_rows), wanted


def _tensor(tensor: pb.ModelInferRequest.InferInputTensor, index: int, raw: bytes | None) -> Tensor:
    name = tensor.name or f"inputs[{index}]"
    where = f"input {name!r}"
    shape, datatype = check_header(list(tensor.shape), tensor.datatype, where)
    filled = tensor.contents.ListFields()  # only the non-empty ones
    if raw is not None:
        if filled:
            raise BadRequest(f"{where} has both contents and raw_input_contents")
        return Tensor(name, datatype, binary.tensor(memoryview(raw), datatype, shape, where))
    expected = FIELDS.get(datatype)
    goes_in = f"contents.{expected[0]}" if expected else "raw_input_contents"
    if not filled:
        if 0 in shape:  # an empty batch: no values are right, the row check says why
            return Tensor(name, datatype, np.empty(shape, NUMPY_TYPES.get(datatype, np.object_)))
        raise BadRequest(f"{where} has no data: {datatype} values go in {goes_in}")
    if len(filled) > 1:
        sent = ", ".join(f"contents.{field.name}" for field, _ in filled)
        raise BadRequest(f"{where} has data in {sent}: {datatype} values go in {goes_in}")
    field, values = filled[0]
    if expected is None or field.name != expected[0]:
        raise BadRequest(
            f"{where}: data does not match datatype {datatype}"
            f" (sent in contents.{field.name}; {datatype} values go in {goes_in})"
        )
    if datatype == "BYTES":
        arr = _strings(values, where)
    else:
        arr = np.array(values, dtype=expected[1])
        check_fits(arr, datatype, where)
    return Tensor(name, datatype, shaped(arr, shape, where))


def _strings(values: Any, where: str) -> npt.NDArray[np.object_]:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        try:
            out[i] = value.decode()
        except UnicodeDecodeError:
            raise BadRequest(f"{where}: BYTES element {i} is not UTF-8") from None
    return out


def classes_parameter(model: ServedModel) -> str:
    """``parameters.classes`` of ``predict_proba``: the class names as a JSON array."""
    return orjson.dumps(list(model.classes)).decode()


def encode(
    model_name: str,
    version: str,
    request_id: str,
    wanted: tuple[str, ...],
    out: npt.NDArray[Any],
    classes: str,
) -> pb.ModelInferResponse:
    """The response: each wanted output's header, its values in raw_output_contents."""
    response = pb.ModelInferResponse(model_name=model_name, model_version=version, id=request_id)
    for name in wanted:
        tensor = outputs.tensor(name, out)
        output = response.outputs.add(name=name, datatype=tensor.datatype, shape=tensor.data.shape)
        if name == outputs.PROBA:
            output.parameters["classes"].string_param = classes
        response.raw_output_contents.append(binary.raw(tensor.data))
    return response
