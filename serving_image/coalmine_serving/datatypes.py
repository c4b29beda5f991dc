"""V2 tensor datatypes: what data each one holds, and which inputs may take it.

The declared datatype is a promise about the data: ``1000`` is not an INT8 and
``true`` is not an FP64. Checks cost nothing for the common cases (FP64 data,
integers that already fit), where numpy's safe-cast rule says no value can be
out of range.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from coalmine_serving.errors import BadRequest

NUMPY_TYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(t)
    for name, t in {
        "BOOL": np.bool_,
        "INT8": np.int8,
        "INT16": np.int16,
        "INT32": np.int32,
        "INT64": np.int64,
        "UINT8": np.uint8,
        "UINT16": np.uint16,
        "UINT32": np.uint32,
        "UINT64": np.uint64,
        "FP16": np.float16,
        "FP32": np.float32,
        "FP64": np.float64,
    }.items()
}
_KINDS = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}  # JSON data kinds each target takes
_RANGES: dict[str, tuple[Any, Any]] = {
    name: (info.min, info.max) if t.kind in "iu" else (float(info.min), float(info.max))
    for name, t in NUMPY_TYPES.items()
    if t.kind != "b"
    for info in [np.iinfo(t) if t.kind in "iu" else np.finfo(t)]
}


def check_fits(arr: npt.NDArray[Any], datatype: str, where: str) -> None:
    """A 400 unless every value of numeric ``arr`` is representable in ``datatype``."""
    target = NUMPY_TYPES[datatype]
    if arr.dtype == target:
        return  # FP64 data as FP64, INT64 as INT64: the common requests
    kind = arr.dtype.kind
    if kind not in _KINDS[target.kind]:
        raise BadRequest(f"{where}: data does not match datatype {datatype}")
    if target.kind == "f":
        # Integers never overflow a float type; a float's magnitude is one reduction.
        if kind != "f" or np.abs(arr).max() <= _RANGES[datatype][1]:
            return
    elif np.can_cast(arr.dtype, target):
        return
    low, high = _RANGES[datatype]
    outside = (arr < low) | (arr > high)
    if outside.any():
        value = arr[outside].flat[0].item()
        raise BadRequest(f"{where}: value {value!r} is outside {datatype}'s range [{low}, {high}]")


def category(datatype: str) -> str:
    """Strings, booleans or numbers: a tensor may feed an input of its own category."""
    return "bytes" if datatype == "BYTES" else "bool" if datatype == "BOOL" else "number"


def strings(data: Any, where: str) -> npt.NDArray[np.object_]:
    """BYTES data (JSON strings, nested like any tensor) as an object array, or a 400."""
    if not isinstance(data, list):
        raise BadRequest(f"{where} must be a list of strings, got {type(data).__name__}")
    arr = np.array(data, dtype=object)
    if not all(isinstance(v, str) for v in arr.flat):
        raise BadRequest(f"{where}: BYTES data must be strings of the same nesting")
    return arr
