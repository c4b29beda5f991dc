"""The served model: a signature the server validates against, and a predict.

The signature (feature count, input limit, classifier or not) is read
once at load time so that each request is checked against it before it reaches
the model; that check is what makes skipping scikit-learn's own validation safe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import sklearn

from coalmine_serving import fastpath, frames
from coalmine_serving.errors import LoadError
from coalmine_serving.signature import Inputs, reconcile

log = logging.getLogger(__name__)

FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class ServedModel:
    """A loaded model with the facts the protocols and metrics need."""

    predict: fastpath.Predict
    n_features: int
    platform: str
    is_classifier: bool
    input_limit: float = float("inf")
    fast: bool = False
    inputs: Inputs | None = None
    """Input names requests are matched by; None takes inputs by position."""
    predict_proba: fastpath.Predict | None = None
    """Class probabilities, columns in ``classes`` order; None when the model has none."""
    classes: tuple[str, ...] = ()
    records: bool = False
    """Takes record arrays (string inputs) instead of a float64 matrix."""
    label_datatype: str = "FP64"
    """The V2 datatype of ``predict``'s output, as the self-test found it."""
    categories: dict[str, frozenset[str]] = field(default_factory=dict)
    """String inputs whose values must be among these (their encoders refuse others)."""


def numpy_to_v2_datatype(dtype: np.dtype[Any]) -> str:
    """The V2 tensor datatype name of a numpy dtype (BYTES for strings)."""
    if dtype.kind == "b":
        return "BOOL"
    if dtype.kind in "iu":
        return f"{'U' if dtype.kind == 'u' else ''}INT{dtype.itemsize * 8}"
    if dtype.kind == "f":
        return f"FP{dtype.itemsize * 8}"
    return "BYTES"


def skip_sklearn_checks() -> None:
    """Skip the finiteness scan and parameter validation in this (the serving) thread.

    Safe because every request passed ``inputs.check_rows`` first. Set once: a
    ``config_context`` per call costs more than it saves on scikit-learn 1.9.
    """
    sklearn.set_config(assume_finite=True, skip_parameter_validation=True)


def from_object(obj: Any, fmt: str, signature: Inputs | None = None) -> ServedModel:
    """Wrap a deserialised artifact, then prove it predicts (the self-test)."""
    model = _wrap_onnx(obj) if fmt == "onnx" else _wrap_sklearn(obj)
    model.inputs = reconcile(signature, _own_inputs(obj), model.n_features)
    probe: npt.NDArray[Any] = np.zeros((2, model.n_features))
    if model.inputs is not None and not model.inputs.numeric:
        if fmt == "onnx":
            raise LoadError("the signature has BYTES inputs; onnx models take numbers only")
        _take_records(model, obj)
        probe = frames.probe(model.inputs, obj)
    try:
        out = np.asarray(model.predict(probe))
    except Exception as exc:
        raise LoadError(f"self-test prediction failed: {exc}") from None
    if out.shape[:1] != (2,):
        raise LoadError(f"self-test prediction returned shape {out.shape} for 2 rows")
    model.label_datatype = numpy_to_v2_datatype(out.dtype)
    if model.predict_proba is not None and not _proba_works(model, probe):
        model.predict_proba = None
    return model


def _take_records(model: ServedModel, est: Any) -> None:
    """String inputs: rows arrive as record arrays and reach the model as a DataFrame."""

    def predict(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.asarray(est.predict(pd.DataFrame(x)))

    def predict_proba(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.asarray(est.predict_proba(pd.DataFrame(x)))

    model.predict, model.fast, model.records = predict, False, True
    model.categories = frames.strict_categories(est)
    if model.predict_proba is not None:
        model.predict_proba = predict_proba


def _proba_works(model: ServedModel, probe: npt.NDArray[Any]) -> bool:
    """Probabilities are offered only if they pass their own self-test: one per class."""
    assert model.predict_proba is not None
    try:
        shape = np.shape(model.predict_proba(probe))
    except Exception:
        log.exception("predict_proba failed its self-test; serving labels only")
        return False
    if shape != (2, len(model.classes)):
        log.warning("predict_proba returned shape %s for 2 rows; serving labels only", shape)
        return False
    return True


def _own_inputs(obj: Any) -> Inputs | None:
    """The columns a model fitted on a DataFrame names in ``feature_names_in_``.

    Columns its encoders took as strings are BYTES, the others numbers.
    """
    names = getattr(obj, "feature_names_in_", None)
    if names is None:
        return None
    strings = frames.string_categories(obj)
    columns = tuple(str(n) for n in names)
    datatypes = tuple("BYTES" if n in strings else "FP64" for n in columns)
    return Inputs(columns, datatypes, declared=False)


def _wrap_sklearn(est: Any) -> ServedModel:
    if not hasattr(est, "predict"):
        raise LoadError(f"{type(est).__name__} has no predict method")
    n_features = getattr(est, "n_features_in_", None)
    if not isinstance(n_features, int | np.integer):
        raise LoadError(f"{type(est).__name__} is not fitted (no n_features_in_)")

    names = getattr(est, "feature_names_in_", None)
    columns = None if names is None else [str(n) for n in names]

    def checked(x: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        return np.asarray(est.predict(x if columns is None else frames.as_frame(x, columns)))

    def proba(x: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        return np.asarray(est.predict_proba(x if columns is None else frames.as_frame(x, columns)))

    if hasattr(est, "n_jobs"):
        est.n_jobs = 1  # the server batches; a thread pool per call only adds overhead
    model = ServedModel(
        predict=checked,
        n_features=int(n_features),
        platform="sklearn",
        is_classifier=hasattr(est, "classes_"),
        # Tree models compare in float32, where larger values overflow to infinity.
        input_limit=FLOAT32_MAX,
    )
    if model.is_classifier and hasattr(est, "predict_proba"):
        model.predict_proba = proba
        model.classes = tuple(str(c) for c in est.classes_)
    fast = fastpath.build(est)
    if fast is not None and _agrees(fast, checked, model.n_features):
        model.predict, model.fast = fast, True
    return model


def _agrees(fast: fastpath.Predict, reference: fastpath.Predict, n_features: int) -> bool:
    """Compare on varied rows; a mismatch means the fast path is not used."""
    rng = np.random.default_rng(0)
    probe = np.vstack([np.zeros((1, n_features)), rng.normal(0, 3, size=(63, n_features))])
    try:
        same = np.array_equal(fast(probe), reference(probe)) and np.array_equal(
            fast(probe[:1]), reference(probe[:1])
        )
    except Exception:
        log.exception("fast predict path failed its self-test; using the public predict")
        return False
    if not same:
        log.warning("fast predict path disagreed with predict; using the public predict")
    return same


def _wrap_onnx(session: Any) -> ServedModel:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise LoadError(f"onnx model has {len(inputs)} inputs; one 2-D tensor is supported")
    spec = inputs[0]
    shape = list(spec.shape)
    if len(shape) != 2 or not isinstance(shape[1], int):
        raise LoadError(f"onnx input {spec.name!r} has shape {shape}; need [batch, features]")
    dtype = np.float64 if spec.type == "tensor(double)" else np.float32
    output = session.get_outputs()[0]
    name, label = spec.name, output.name

    def predict(x: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        out = session.run([label], {name: x.astype(dtype, copy=False)})[0]
        return np.asarray(out).reshape(x.shape[0], -1)[:, 0] if np.ndim(out) > 1 else out

    return ServedModel(
        predict=predict,
        n_features=shape[1],
        platform="onnx",
        is_classifier=output.type in ("tensor(int64)", "tensor(string)"),
        input_limit=FLOAT32_MAX if dtype is np.float32 else float("inf"),
    )
