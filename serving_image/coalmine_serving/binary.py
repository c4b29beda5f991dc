"""The binary tensor data extension of V2 REST (Triton's, also KServe's).

A request may carry a JSON header whose length is in the
``Inference-Header-Content-Length`` header, followed by raw tensor bytes: each
input with ``parameters.binary_data_size`` takes the next that many bytes, in
input order (little-endian values; BYTES as 4-byte length-prefixed elements).
Outputs asked for in binary are answered the same way. Every length must add
up exactly, or the request is a 400: a short or stray byte would shift every
tensor after it.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import numpy.typing as npt

from coalmine_serving.datatypes import NUMPY_TYPES
from coalmine_serving.errors import BadRequest

HEADER = b"inference-header-content-length"
_LENGTH = struct.Struct("<I")


def split(body: bytes, header_length: bytes) -> tuple[bytes, memoryview]:
    """The JSON header and the binary part of a body, by the header's declared length."""
    if not header_length.isdigit():
        raise BadRequest(
            f"Inference-Header-Content-Length must be a byte count, got {header_length!r}"
        )
    length = int(header_length)
    if length > len(body):
        raise BadRequest(
            f"Inference-Header-Content-Length {length} is beyond the body's {len(body)} bytes"
        )
    view = memoryview(body)
    return bytes(view[:length]), view[length:]


class Chunks:
    """The binary part, handed out to the inputs in order."""

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._offset = 0

    def take(self, size: Any, where: str) -> memoryview:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadRequest(f"{where}: binary_data_size must be a non-negative integer")
        end = self._offset + size
        if end > len(self._data):
            left = len(self._data) - self._offset
            raise BadRequest(f"{where}: binary_data_size {size} is beyond the {left} bytes left")
        chunk = self._data[self._offset : end]
        self._offset = end
        return chunk

    def finish(self) -> None:
        left = len(self._data) - self._offset
        if left:
            raise BadRequest(f"{left} bytes of binary data follow the inputs' binary_data_size")


def tensor(chunk: memoryview, datatype: str, shape: list[int], where: str) -> npt.NDArray[Any]:
    """Raw bytes as an array of ``shape``; a 400 when the byte count does not fit it."""
    count = math.prod(shape)
    if datatype == "BYTES":
        return _strings(chunk, count, where).reshape(shape)
    dtype = NUMPY_TYPES[datatype].newbyteorder("<")
    if len(chunk) != count * dtype.itemsize:
        raise BadRequest(
            f"{where}: {len(chunk)} bytes of binary data, but shape {shape} of {datatype}"
            f" needs {count * dtype.itemsize}"
        )
    return np.frombuffer(chunk, dtype=dtype).reshape(shape)


def _strings(chunk: memoryview, count: int, where: str) -> npt.NDArray[np.object_]:
    out = np.empty(count, dtype=object)
    offset = 0
    for i in range(count):
        if offset + 4 > len(chunk):
            raise BadRequest(f"{where}: binary BYTES data ends before element {i}")
        (size,) = _LENGTH.unpack_from(chunk, offset)
        offset += 4
        if offset + size > len(chunk):
            raise BadRequest(f"{where}: binary BYTES element {i} runs past the data")
        try:
            out[i] = bytes(chunk[offset : offset + size]).decode()
        except UnicodeDecodeError:
            raise BadRequest(f"{where}: binary BYTES element {i} is not UTF-8") from None
        offset += size
    if offset != len(chunk):
        raise BadRequest(f"{where}: {len(chunk) - offset} bytes left after {count} BYTES elements")
    return out


def raw(values: npt.NDArray[Any]) -> bytes:
    """An output's values as the extension's raw bytes."""
    if values.dtype.kind in "biuf":
        return np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes()
    parts = []
    for value in values.ravel().tolist():
        encoded = str(value).encode()
        parts += [_LENGTH.pack(len(encoded)), encoded]
    return b"".join(parts)
