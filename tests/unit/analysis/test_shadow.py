"""The shadow figures: agreement and predictionDelta from the stable pods' mirror counters,
and the canary's error rate counting the copies it never answered."""

from __future__ import annotations

import pytest

from coalmine.analysis import aggregate, measure, parse_metrics, window
from tests.unit.analysis.test_verdict import GOOD, NOW, builtin, spec, win

STABLE_POD = """
coalmine_requests_total{code="200",protocol="v2"} 400
coalmine_mirror_requests_total{canary="iris-v2",outcome="compared"} 90
coalmine_mirror_requests_total{canary="iris-v2",outcome="timeout"} 4
coalmine_mirror_requests_total{canary="iris-v2",outcome="unreachable"} 6
coalmine_mirror_requests_total{canary="iris-v2",outcome="dropped"} 7
coalmine_mirror_compared_rows_total{canary="iris-v2"} 300
coalmine_mirror_agreeing_rows_total{canary="iris-v2"} 150
coalmine_mirror_delta_bucket{canary="iris-v2",le="0.1"} 10
coalmine_mirror_delta_bucket{canary="iris-v2",le="+Inf"} 300
"""


def test_the_stable_pods_mirror_counters_are_summed_and_windowed() -> None:
    first = aggregate([parse_metrics(STABLE_POD)])
    assert (first.compared_rows, first.agreeing_rows, first.unanswered_mirrors) == (300, 150, 10)
    assert first.delta_buckets == {"0.1": 10, "+Inf": 300}
    later = aggregate([parse_metrics(STABLE_POD.replace(" 300\n", " 500\n"))])
    w = window(first, later)
    assert not w.baseline
    assert (w.compared_rows, w.agreeing_rows) == (200, 0)
    assert w.delta_buckets == {"0.1": 0, "+Inf": 200}


def test_agreement_is_the_share_of_compared_rows_the_canary_agreed_on() -> None:
    stable = win(requests=500, compared_rows=400, agreeing_rows=100)
    m = measure(spec(builtin("agree", "agreement", min=0.99)), win(), stable, {}, NOW)
    assert m.outcome == "Failed"
    result = m.metrics[0]
    assert (result.value, result.sample_count) == (0.25, 400)
    good = win(requests=500, compared_rows=400, agreeing_rows=400)
    assert measure(spec(builtin("agree", "agreement", min=0.99)), win(), good, {}, NOW).outcome == (
        "Successful"
    )


def test_agreement_without_enough_compared_rows_is_inconclusive() -> None:
    stable = win(requests=500, compared_rows=5, agreeing_rows=0)
    m = measure(spec(builtin("agree", "agreement", min=0.99)), win(), stable, {}, NOW)
    assert m.outcome == "Inconclusive"
    assert m.metrics[0].message == "too little traffic: 5 samples < 10"


def test_prediction_delta_is_a_high_quantile_of_the_absolute_differences() -> None:
    stable = win(compared_rows=100, delta_buckets={"0.01": 0, "0.3": 100, "+Inf": 100})
    m = measure(spec(builtin("delta", "predictionDelta", max=0.01)), win(), stable, {}, NOW)
    assert m.outcome == "Failed"
    assert m.metrics[0].value == pytest.approx(0.01 + 0.95 * 0.29)
    same = win(compared_rows=100, delta_buckets={"1e-06": 100, "+Inf": 100})
    assert measure(
        spec(builtin("d", "predictionDelta", max=0.01)), win(), same, {}, NOW
    ).outcome == ("Successful")


def test_prediction_delta_of_a_classifier_is_an_error_that_says_why() -> None:
    stable = win(compared_rows=100, agreeing_rows=100)
    m = measure(spec(builtin("delta", "predictionDelta", max=0.01)), win(), stable, {}, NOW)
    assert m.outcome == "Error"
    assert "for regressors" in m.metrics[0].message


def test_copies_the_canary_never_answered_count_as_its_errors() -> None:
    canary = win(requests=50, server_errors=0)  # it answered 50 copies well, then went away
    stable = win(requests=1000, unanswered_mirrors=50)
    m = measure(spec(builtin("errors", "errorRate", max=0.05)), canary, stable, {}, NOW)
    assert m.outcome == "Failed"
    result = m.metrics[0]
    assert (result.value, result.stable_value, result.sample_count) == (0.5, 0.0, 100)


def test_a_shadow_only_canary_has_error_samples_from_its_copies() -> None:
    canary = win(requests=40, server_errors=40)  # 500 to every copy, no client request
    m = measure(spec(builtin("errors", "errorRate", max=0.05)), canary, GOOD, {}, NOW)
    assert m.outcome == "Failed"
    assert m.metrics[0].value == 1.0
