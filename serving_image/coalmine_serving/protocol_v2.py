"""Open Inference Protocol V2 (REST): tensors in, tensors out.

Inputs are either one tensor shaped [rows, features] or one tensor per feature
shaped [rows] or [rows, 1], matched by name when the model has input names and
taken in request order when it has none. The single output is named
``predict`` (the name MLServer's scikit-learn runtime uses).
"""

from __future__ import annotations

from typing import Any

import orjson

from coalmine_serving.errors import BadRequest
from coalmine_serving.inputs import Matrix, check_rows, json_object
from coalmine_serving.model import ServedModel, numpy_to_v2_datatype
from coalmine_serving.tensors import decode_tensor, rows

OUTPUT_NAME = "predict"


def decode(body: bytes, model: ServedModel, max_rows: int) -> tuple[Matrix, Any]:
    """Parse an infer request; return the row matrix and the request id (or None)."""
    doc = json_object(body)
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("missing inputs: the request needs a non-empty 'inputs' list")
    outputs = doc.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list):
            raise BadRequest("'outputs' must be a list")
        for out in outputs:
            name = out.get("name") if isinstance(out, dict) else None
            if name != OUTPUT_NAME:
                raise BadRequest(f"unknown output {name!r}; this model provides {OUTPUT_NAME!r}")
    tensors = [decode_tensor(t, i) for i, t in enumerate(inputs)]
    x = rows(tensors, model.n_features, model.inputs)
    return check_rows(x, model, max_rows), doc.get("id")


def encode(model_name: str, version: str, request_id: Any, out: Any) -> bytes:
    """The infer response for one request's predictions."""
    doc: dict[str, Any] = {"model_name": model_name, "model_version": version}
    if request_id is not None:
        doc["id"] = request_id
    doc["outputs"] = [
        {
            "name": OUTPUT_NAME,
            "shape": [len(out)],
            "datatype": numpy_to_v2_datatype(out.dtype),
            "data": out if out.dtype.kind in "biuf" else out.tolist(),
        }
    ]
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def model_metadata(name: str, version: str, model: ServedModel, out_datatype: str) -> bytes:
    """GET /v2/models/{name}: the tensor signature clients can build requests from."""
    return orjson.dumps(
        {
            "name": name,
            "versions": [version],
            "platform": model.platform,
            "inputs": _input_metadata(model),
            "outputs": [{"name": OUTPUT_NAME, "datatype": out_datatype, "shape": [-1]}],
        }
    )


def _input_metadata(model: ServedModel) -> list[dict[str, Any]]:
    """One tensor per named input, or the positional matrix when there are no names."""
    if model.inputs is None:
        return [{"name": "input-0", "datatype": "FP64", "shape": [-1, model.n_features]}]
    return [
        {"name": name, "datatype": datatype, "shape": [-1, 1]}
        for name, datatype in zip(model.inputs.names, model.inputs.datatypes, strict=True)
    ]
