"""Binary BYTES tensors: 4-byte little-endian lengths, each element UTF-8, nothing left over."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from coalmine_serving.binary import raw, tensor
from coalmine_serving.errors import BadRequest


def strings(*values: str) -> bytes:
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def test_binary_strings_decode_and_refuse_bad_lengths() -> None:
    out = tensor(memoryview(strings("red", "", "grün")), "BYTES", [3, 1], "input 'c'")
    assert out.ravel().tolist() == ["red", "", "grün"]
    for data, message in [
        (strings("red")[:-1], "runs past the data"),
        (strings("red") + b"\0", "bytes left after 1 BYTES elements"),
        (b"\x05", "ends before element 0"),
        (struct.pack("<I", 1) + b"\xff", "is not UTF-8"),
    ]:
        with pytest.raises(BadRequest, match=message):
            tensor(memoryview(data), "BYTES", [1], "input 'c'")


def test_string_outputs_round_trip() -> None:
    values = np.array(["setosa", "virginica"])
    assert tensor(memoryview(raw(values)), "BYTES", [2], "output").tolist() == values.tolist()
