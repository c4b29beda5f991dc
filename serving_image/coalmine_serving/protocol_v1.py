"""KServe V1 (TensorFlow-Serving style): ``instances`` in, ``predictions`` out."""

from __future__ import annotations

from typing import Any

import orjson

from coalmine_serving.errors import BadRequest
from coalmine_serving.inputs import Matrix, check_rows, json_object, to_array
from coalmine_serving.model import ServedModel


def decode(body: bytes, model: ServedModel, max_rows: int) -> Matrix:
    """Rows from ``{"instances": [[...], ...]}`` (or the ``inputs`` alias)."""
    doc = json_object(body)
    key = "instances" if "instances" in doc else "inputs" if "inputs" in doc else None
    if key is None:
        raise BadRequest("missing inputs: the request needs an 'instances' list")
    return check_rows(to_array(doc[key], f"'{key}'"), model, max_rows)


def encode(out: Any) -> bytes:
    data = out if out.dtype.kind in "biuf" else out.tolist()
    return orjson.dumps({"predictions": data}, option=orjson.OPT_SERIALIZE_NUMPY)
