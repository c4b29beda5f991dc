"""KServe V1 (TensorFlow-Serving style): ``instances`` in, ``predictions`` out.

V1 has no output selection; ``"parameters": {"output": "predict_proba"}`` asks
for probabilities, answered as one list per row with the class names beside
the predictions.
"""

from __future__ import annotations

from typing import Any

import orjson

from coalmine_serving import outputs
from coalmine_serving.errors import BadRequest
from coalmine_serving.inputs import Matrix, check_rows, json_object, to_array
from coalmine_serving.model import ServedModel


def decode(
    body: bytes, model: ServedModel, max_rows: int
) -> tuple[Matrix, tuple[str, ...], str | None]:
    """Rows from ``{"instances": [[...], ...]}`` (or the ``inputs`` alias), the output, and
    the request's ``id`` when it is a string."""
    doc = json_object(body)
    if model.records:
        raise BadRequest("this model has string inputs: send them over V2, one input per column")
    key = "instances" if "instances" in doc else "inputs" if "inputs" in doc else None
    if key is None:
        raise BadRequest("missing inputs: the request needs an 'instances' list")
    wanted = outputs.LABELS_ONLY
    parameters = doc.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise BadRequest("'parameters' must be an object")
        if "output" in parameters:
            wanted = outputs.requested([parameters["output"]], model)
    id = doc.get("id")
    rows = check_rows(to_array(doc[key], f"'{key}'"), model, max_rows)
    return rows, wanted, id if isinstance(id, str) else None


def encode(out: Any, wanted: tuple[str, ...], classes: tuple[str, ...], id: str | None) -> bytes:
    """The predictions (or probabilities with the class names), and the id when there is one."""
    doc: dict[str, Any]
    if wanted[0] == outputs.PROBA:
        doc = {"predictions": outputs.probabilities(out), "classes": classes}
    else:
        doc = {"predictions": out if out.dtype.kind in "biuf" else out.tolist()}
    if id is not None:
        doc["id"] = id
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
