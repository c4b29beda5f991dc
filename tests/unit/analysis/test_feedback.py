"""The ground-truth figures: accuracy and meanAbsoluteError from the feedback counters the
serving pods export, canary against stable."""

from __future__ import annotations

import pytest

from coalmine.analysis import VariantWindow, aggregate, measure, parse_metrics, window
from coalmine.api.counters import VariantCounters
from tests.unit.analysis.test_verdict import NOW, builtin, spec, win

CLASSIFIER_POD = """
coalmine_predictions_total{class="setosa"} 500
coalmine_feedback_total{outcome="matched"} 40
coalmine_feedback_total{outcome="unknown"} 3
coalmine_feedback_rows_total 200
coalmine_feedback_correct_rows_total 180
"""
REGRESSOR_POD = """
coalmine_prediction_value_bucket{le="+Inf"} 500
coalmine_feedback_rows_total 100
coalmine_feedback_abs_error_bucket{le="+Inf"} 100
coalmine_feedback_abs_error_sum 250.0
coalmine_feedback_abs_error_count 100
"""


def regressor(**counts: float) -> VariantWindow:
    return VariantWindow(snapshot=VariantCounters(pods=1, prediction_buckets={"+Inf": 1}), **counts)


def test_feedback_counters_are_summed_over_pods_and_windowed() -> None:
    first = aggregate([parse_metrics(CLASSIFIER_POD), parse_metrics(CLASSIFIER_POD)])
    assert (first.labelled_rows, first.correct_rows) == (400, 360)
    later = aggregate(
        [parse_metrics(CLASSIFIER_POD.replace(" 180\n", " 190\n").replace(" 200\n", " 300\n"))] * 2
    )
    w = window(first, later)
    assert (w.labelled_rows, w.correct_rows) == (200, 20)
    mae = aggregate([parse_metrics(REGRESSOR_POD)])
    assert (mae.labelled_rows, mae.absolute_error) == (100, 250)


def test_accuracy_fails_a_canary_below_min_and_names_stable_beside_it() -> None:
    canary = win(labelled_rows=200, correct_rows=120)
    stable = win(labelled_rows=200, correct_rows=190)
    m = measure(spec(builtin("acc", "accuracy", min=0.9)), canary, stable, {}, NOW)
    assert m.outcome == "Failed"
    result = m.metrics[0]
    assert (result.value, result.stable_value, result.sample_count) == (0.6, 0.95, 200)
    assert result.message == "acc 0.60 < min 0.90 (canary), 0.95 stable"


def test_accuracy_counts_labelled_rows_not_requests() -> None:
    canary = win(requests=10_000, labelled_rows=5, correct_rows=0)
    m = measure(spec(builtin("acc", "accuracy", min=0.9)), canary, win(), {}, NOW)
    assert m.outcome == "Inconclusive"
    assert m.metrics[0].message == "too little traffic: 5 samples < 10"


def test_mean_absolute_error_is_the_error_sum_over_labelled_rows() -> None:
    canary = regressor(labelled_rows=100, absolute_error=250.0)
    stable = regressor(labelled_rows=100, absolute_error=50.0)
    m = measure(spec(builtin("mae", "meanAbsoluteError", max=1.0)), canary, stable, {}, NOW)
    assert m.outcome == "Failed"
    assert (m.metrics[0].value, m.metrics[0].stable_value) == (2.5, 0.5)


@pytest.mark.parametrize(
    ("metric", "canary", "why"),
    [
        ("accuracy", regressor(labelled_rows=50), "accuracy is for classifiers"),
        (
            "meanAbsoluteError",
            win(labelled_rows=50, correct_rows=50),
            "meanAbsoluteError is for regressors",
        ),
    ],
)
def test_a_feedback_metric_on_the_wrong_kind_of_model_is_an_error(
    metric: str, canary: VariantWindow, why: str
) -> None:
    m = measure(spec(builtin("m", metric, min=0.5)), canary, canary, {}, NOW)
    assert m.outcome == "Error"
    assert m.metrics[0].message == why
