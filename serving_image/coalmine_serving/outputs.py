"""Which outputs a request asks for, and the model call that answers them.

``predict`` (the label or value) is the default. ``predict_proba`` (one column
per class, class names in the output's parameters) is computed only when asked
for, in its own batches: the labels travel with it, so the prediction metrics
the analysis reads count those rows too.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from coalmine_serving.errors import BadRequest
from coalmine_serving.fastpath import Predict
from coalmine_serving.model import ServedModel, numpy_to_v2_datatype
from coalmine_serving.signature import quote

PREDICT = "predict"
PROBA = "predict_proba"
LABELS_ONLY: tuple[str, ...] = (PREDICT,)


class OutputTensor(NamedTuple):
    """One output of a request as V2 sends it, whatever the protocol."""

    name: str
    datatype: str
    data: npt.NDArray[Any]
    """Labels shaped [rows], or probabilities shaped [rows, classes] (class names beside)."""


def offered(model: ServedModel) -> tuple[str, ...]:
    return (PREDICT, PROBA) if model.predict_proba is not None else LABELS_ONLY


def requested(names: list[Any], model: ServedModel) -> tuple[str, ...]:
    """The output names asked for, in order; a 400 for one the model does not offer."""
    available = offered(model)
    for name in names:
        if name not in available:
            raise BadRequest(f"unknown output {name!r}; this model provides {quote(available)}")
    return tuple(names) or LABELS_ONLY


def labels_and_probabilities(model: ServedModel) -> Predict:
    """One call giving rows of (label, probabilities), sliceable per request like labels."""
    proba = model.predict_proba
    assert proba is not None
    predict = model.predict

    def both(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        labels = np.asarray(predict(x))
        p = np.asarray(proba(x), dtype=np.float64)
        out = np.empty(len(labels), [(PREDICT, labels.dtype), (PROBA, np.float64, p.shape[1:])])
        out[PREDICT], out[PROBA] = labels, p
        return out

    return both


def labels(out: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The labels of rows answered by either call, contiguous as orjson needs them."""
    return np.ascontiguousarray(out[PREDICT]) if out.dtype.names else out


def probabilities(out: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """The [rows, classes] probabilities of rows answered by ``labels_and_probabilities``."""
    return np.ascontiguousarray(out[PROBA])


def tensor(name: str, out: npt.NDArray[Any]) -> OutputTensor:
    """The output ``name`` (``predict`` or ``predict_proba``) of one request's rows."""
    if name == PROBA:
        return OutputTensor(name, "FP64", probabilities(out))
    values = labels(out)
    return OutputTensor(name, numpy_to_v2_datatype(values.dtype), values)
