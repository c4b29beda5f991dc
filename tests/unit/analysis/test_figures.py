"""The statistics: histogram quantiles, total variation distance, PSI."""

from __future__ import annotations

import math

import pytest

from coalmine.analysis.figures import per_bucket, psi, quantile, total_variation


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.5, 0.01 * 50 / 60),  # rank 50 of 100 lies in (0, 0.01], which holds 60
        (0.3, 0.005),
        (0.9, 0.01 + (1.0 - 0.01) * (90 - 60) / 40),
    ],
)
def test_quantile_interpolates_like_histogram_quantile(q: float, expected: float) -> None:
    assert quantile(q, {"0.01": 60, "1.0": 100, "+Inf": 100}) == pytest.approx(expected)


def test_quantile_in_the_inf_bucket_is_the_last_finite_bound() -> None:
    assert quantile(0.99, {"0.1": 10, "+Inf": 100}) == 0.1


def test_quantile_without_observations() -> None:
    assert quantile(0.5, {}) is None
    assert quantile(0.5, {"0.1": 0, "+Inf": 0}) is None


def test_quantile_repairs_non_monotonic_buckets() -> None:
    assert quantile(0.5, {"0.1": 10, "0.2": 8, "+Inf": 10}) == pytest.approx(0.05)


def test_per_bucket() -> None:
    assert per_bucket({"0.1": 3, "1": 5, "+Inf": 9}) == {"0.1": 3, "1.0": 2, "inf": 4}


def test_total_variation() -> None:
    assert total_variation({"a": 5, "b": 5}, {"a": 50, "b": 50}) == 0
    assert total_variation({"a": 1}, {"b": 7}) == 1
    assert total_variation({"a": 3, "b": 1}, {"a": 1, "b": 1}) == pytest.approx(0.25)
    assert total_variation({}, {"a": 1}) is None


def test_psi_formula_with_floor() -> None:
    expected = (0.5 - 0.25) * math.log(0.5 / 0.25) + (0.5 - 0.75) * math.log(0.5 / 0.75)
    assert psi([5, 5], [0.25, 0.75]) == pytest.approx(expected)
    assert psi([10, 0], [0.5, 0.5]) == pytest.approx(
        (1 - 0.5) * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    )
    assert psi([0, 0], [0.5, 0.5]) is None
    assert psi([1, 2, 3], [0.5, 0.5]) is None
