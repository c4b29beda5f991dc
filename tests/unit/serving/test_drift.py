"""PSI and out-of-range accounting against a hand-computed reference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from coalmine_serving.drift import DriftTracker, parse_reference, reference_from_data
from coalmine_serving.errors import LoadError

REFERENCE = {
    "features": [
        {"name": "a", "edges": [0, 1, 2], "expected": [0.5, 0.5]},
        {"name": "b", "edges": [0, 10, 20, 30], "expected": [0.2, 0.3, 0.5]},
    ]
}


def test_psi_matches_the_formula() -> None:
    tracker = DriftTracker(parse_reference(json.dumps(REFERENCE), 2))
    x = np.array([[0.5, 5], [0.7, 15], [1.5, 25], [0.2, 25]])
    tracker.observe(x[:1])
    tracker.observe(x[1:])
    actual_a, expected_a = np.array([0.75, 0.25]), np.array([0.5, 0.5])
    actual_b, expected_b = np.array([0.25, 0.25, 0.5]), np.array([0.2, 0.3, 0.5])
    psi_a = np.sum((actual_a - expected_a) * np.log(actual_a / expected_a))
    psi_b = np.sum((actual_b - expected_b) * np.log(actual_b / expected_b))
    np.testing.assert_allclose(tracker.psi(), [psi_a, psi_b])
    assert tracker.rows == 4
    assert tracker.rows_out_of_range == 0


def test_out_of_range_values_count_in_the_end_bins() -> None:
    tracker = DriftTracker(parse_reference(json.dumps(REFERENCE), 2))
    tracker.observe(np.array([[-5.0, 100.0], [1.0, 10.0]]))
    assert tracker.counts.tolist() == [[1, 1, 0], [0, 1, 1]]
    assert tracker.out_of_range.tolist() == [1, 1]
    assert tracker.rows_out_of_range == 1


def test_reference_from_training_data_has_near_zero_psi_on_itself() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 3))
    tracker = DriftTracker(parse_reference(json.dumps(reference_from_data(x)), 3))
    tracker.observe(x)
    assert np.all(tracker.psi() < 1e-3)
    shifted = DriftTracker(tracker.reference)
    shifted.observe(x + 1.0)
    assert np.all(shifted.psi() > 0.25)  # the conventional "significant shift" threshold


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"features": [{"edges": [0, 1], "expected": [0.5, 0.5]}]}, r"N\+1 increasing edges"),
        ({"features": [{"edges": [0, 1, 2], "expected": [0.9, 0.5]}]}, "sum to 1"),
        ({"features": [{"edges": [1, 0], "expected": [1.0]}]}, "increasing"),
        ({"nope": []}, "cannot read"),
    ],
)
def test_invalid_references_are_refused(doc: dict, reason: str) -> None:
    with pytest.raises(LoadError, match=reason):
        parse_reference(json.dumps(doc), 1)
