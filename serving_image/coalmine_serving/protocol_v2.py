"""Open Inference Protocol V2 (REST): tensors in, tensors out.

Inputs are either one tensor shaped [rows, features] or one tensor per feature
shaped [rows] or [rows, 1], matched by name when the model has input names and
taken in request order when it has none. Outputs are ``predict`` (the
default, the name MLServer's scikit-learn runtime uses) and, for classifiers
that have it, ``predict_proba``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from coalmine_serving import binary, outputs
from coalmine_serving.errors import BadRequest
from coalmine_serving.inputs import Rows, json_object
from coalmine_serving.model import ServedModel
from coalmine_serving.tensors import NO_INPUTS, decode_tensor, model_rows


@dataclass(slots=True)
class InferRequest:
    """What a V2 infer request asks: rows, its id (echoed), the outputs wanted."""

    rows: Rows
    id: Any
    outputs: tuple[str, ...]
    binary: tuple[bool, ...] = ()
    """Per output, whether it is answered in binary; empty when none is."""


def decode(
    body: bytes, model: ServedModel, max_rows: int, header_length: bytes | None = None
) -> InferRequest:
    """Parse an infer request, or a 400 naming what is wrong with it.

    ``header_length`` is the request's Inference-Header-Content-Length: the body
    is then a JSON header followed by binary tensor data.
    """
    chunks = None
    if header_length is not None:
        body, rest = binary.split(body, header_length)
        chunks = binary.Chunks(rest)
    doc = json_object(body)
    inputs = doc.get("inputs")
    if not isinstance(inputs, list):
        raise BadRequest(NO_INPUTS)
    wanted = outputs.LABELS_ONLY
    parameters = doc.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise BadRequest("'parameters' must be an object")
    all_binary = _flag(parameters, "binary_data_output", False)
    binary_outputs = [all_binary]
    asked = doc.get("outputs")
    if asked is not None:
        if not isinstance(asked, list):
            raise BadRequest("'outputs' must be a list")
        if not all(isinstance(out, dict) for out in asked):
            raise BadRequest("each of 'outputs' must be an object with a 'name'")
        wanted = outputs.requested([out.get("name") for out in asked], model)
        binary_outputs = [_flag(out.get("parameters"), "binary_data", all_binary) for out in asked]
    tensors = [decode_tensor(t, i, chunks) for i, t in enumerate(inputs)]
    if chunks is not None:
        chunks.finish()
    x = model_rows(tensors, model, max_rows)
    return InferRequest(
        x, doc.get("id"), wanted, tuple(binary_outputs) if any(binary_outputs) else ()
    )


def _flag(parameters: Any, name: str, default: bool) -> bool:
    value = parameters.get(name, default) if isinstance(parameters, dict) else default
    if not isinstance(value, bool):
        raise BadRequest(f"parameter {name!r} must be true or false")
    return value


def encode(
    model_name: str, version: str, request: InferRequest, out: Any, classes: tuple[str, ...]
) -> bytes:
    """The infer response: the requested outputs of one request's rows, in request order."""
    doc: dict[str, Any] = {"model_name": model_name, "model_version": version}
    if request.id is not None:
        doc["id"] = request.id
    doc["outputs"] = [_output(name, out, classes) for name in request.outputs]
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def encode_binary(
    model_name: str, version: str, request: InferRequest, out: Any, classes: tuple[str, ...]
) -> tuple[bytes, int]:
    """The response with the outputs asked for in binary after its JSON header.

    Returns the body and the header's length (its Inference-Header-Content-Length).
    """
    doc: dict[str, Any] = {"model_name": model_name, "model_version": version}
    if request.id is not None:
        doc["id"] = request.id
    doc["outputs"], tail = [], []
    for name, in_binary in zip(request.outputs, request.binary, strict=True):
        output = _output(name, out, classes)
        if in_binary:
            data = binary.raw(np.asarray(output.pop("data")))
            output["parameters"] = {**output.get("parameters", {}), "binary_data_size": len(data)}
            tail.append(data)
        doc["outputs"].append(output)
    header = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    return header + b"".join(tail), len(header)


def _output(name: str, out: Any, classes: tuple[str, ...]) -> dict[str, Any]:
    tensor = outputs.tensor(name, out)
    data = tensor.data
    doc: dict[str, Any] = {"name": name, "shape": list(data.shape), "datatype": tensor.datatype}
    if name == outputs.PROBA:
        doc["parameters"] = {"classes": classes}
    doc["data"] = data.ravel() if data.dtype.kind in "biuf" else data.tolist()
    return doc


def model_metadata(name: str, version: str, model: ServedModel) -> bytes:
    """GET /v2/models/{name}: the tensor signature clients can build requests from."""
    return orjson.dumps(
        {
            "name": name,
            "versions": [version],
            "platform": model.platform,
            "inputs": input_metadata(model),
            "outputs": output_metadata(model),
        }
    )


def input_metadata(model: ServedModel) -> list[dict[str, Any]]:
    """One tensor per named input, or the positional matrix when there are no names."""
    if model.inputs is None:
        return [{"name": "input-0", "datatype": "FP64", "shape": [-1, model.n_features]}]
    return [
        {"name": name, "datatype": datatype, "shape": [-1, 1]}
        for name, datatype in zip(model.inputs.names, model.inputs.datatypes, strict=True)
    ]


def output_metadata(model: ServedModel) -> list[dict[str, Any]]:
    """``predict``, and ``predict_proba`` with its class names when the model has it."""
    meta: list[dict[str, Any]] = [
        {"name": outputs.PREDICT, "datatype": model.label_datatype, "shape": [-1]}
    ]
    if model.predict_proba is not None:
        meta.append(
            {
                "name": outputs.PROBA,
                "datatype": "FP64",
                "shape": [-1, len(model.classes)],
                "parameters": {"classes": model.classes},
            }
        )
    return meta
