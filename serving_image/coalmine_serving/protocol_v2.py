"""Open Inference Protocol V2 (REST): tensors in, tensors out.

Inputs are either one tensor shaped [rows, features] or one tensor per feature
shaped [rows] or [rows, 1], taken in request order. The single output is named
``predict`` (the name MLServer's scikit-learn runtime uses).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from coalmine_serving.errors import BadRequest
from coalmine_serving.inputs import Matrix, check_rows, json_object, to_array
from coalmine_serving.model import ServedModel, numpy_to_v2_datatype

OUTPUT_NAME = "predict"
_INT_TYPES = {f"{s}INT{b}" for s in ("", "U") for b in (8, 16, 32, 64)}
_FLOAT_TYPES = {"FP16", "FP32", "FP64"}


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
    tensors = [_decode_tensor(t, i) for i, t in enumerate(inputs)]
    if len(tensors) == 1:
        x = tensors[0]
    else:
        columns = [t.reshape(-1) if t.ndim == 2 and t.shape[1] == 1 else t for t in tensors]
        if any(c.ndim != 1 for c in columns) or len({c.shape[0] for c in columns}) != 1:
            raise BadRequest(
                "with several inputs, each must be one feature column shaped [rows] or [rows, 1]"
                " with the same number of rows"
            )
        x = np.column_stack(columns)
    return check_rows(x, model, max_rows), doc.get("id")


def _decode_tensor(tensor: Any, index: int) -> Any:
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
    if datatype != "BOOL" and datatype not in _INT_TYPES and datatype not in _FLOAT_TYPES:
        raise BadRequest(f"{where}: unknown datatype {datatype!r}")
    arr = to_array(data, where)
    allowed = "b" if datatype == "BOOL" else "biu" if datatype in _INT_TYPES else "biuf"
    if arr.size and arr.dtype.kind not in allowed:
        raise BadRequest(f"{where}: data does not match datatype {datatype}")
    if arr.size != int(np.prod(shape)):
        raise BadRequest(
            f"{where}: shape {shape} needs {int(np.prod(shape))} values, got {arr.size}"
        )
    return arr.reshape(shape)


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
            "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, model.n_features]}],
            "outputs": [{"name": OUTPUT_NAME, "datatype": out_datatype, "shape": [-1]}],
        }
    )
