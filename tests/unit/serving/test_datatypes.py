"""Data must fit the datatype it is declared as: kind and range."""

from __future__ import annotations

import numpy as np
import pytest

from coalmine_serving.datatypes import check_fits, strings
from coalmine_serving.errors import BadRequest


@pytest.mark.parametrize(
    ("data", "datatype"),
    [
        ([-128, 127], "INT8"),
        ([0, 255], "UINT8"),
        ([2**63 - 1], "INT64"),
        ([2**64 - 1], "UINT64"),
        ([1, 2], "FP16"),
        ([65504.0], "FP16"),
        ([3.4e38], "FP32"),
        ([1e300, 3], "FP64"),
        ([True, False], "BOOL"),
    ],
)
def test_values_that_fit(data: list[object], datatype: str) -> None:
    check_fits(np.asarray(data), datatype, "input 'x'")


@pytest.mark.parametrize(
    ("data", "datatype", "message"),
    [
        ([128], "INT8", "value 128 is outside INT8's range [-128, 127]"),
        ([-129], "INT8", "value -129 is outside"),
        ([-1], "UINT64", "value -1 is outside UINT64's range"),
        ([2**63], "INT64", "is outside INT64's range"),
        ([70000.0], "FP16", "value 70000.0 is outside FP16's range"),
        ([1e39], "FP32", "is outside FP32's range"),
        ([1.5], "INT32", "data does not match datatype INT32"),
        ([True], "FP64", "data does not match datatype FP64"),
        ([True], "INT64", "data does not match datatype INT64"),
        ([0, 1], "BOOL", "data does not match datatype BOOL"),
    ],
)
def test_values_that_do_not_fit(data: list[object], datatype: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_fits(np.asarray(data), datatype, "input 'x'")


def test_strings_keep_their_nesting() -> None:
    assert strings([["a"], ["b"]], "input 'x'").shape == (2, 1)
    for bad in ([["a"], ["b", "c"]], ["a", 1], ["a", None], "a"):
        with pytest.raises(BadRequest):
            strings(bad, "input 'x'")
