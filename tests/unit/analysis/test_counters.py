"""Summing pods into a snapshot, and snapshots into a window."""

from __future__ import annotations

from coalmine.analysis import aggregate, parse_metrics, window
from coalmine.analysis.counters import le_key
from coalmine.api.counters import VariantCounters

POD_A = """
coalmine_requests_total{code="200",protocol="v2"} 90
coalmine_requests_total{code="400",protocol="v1"} 5
coalmine_requests_total{code="503",protocol="v2"} 5
coalmine_request_errors_total{code="503",protocol="v2"} 5
coalmine_request_duration_seconds_bucket{le="0.01",protocol="v2"} 60
coalmine_request_duration_seconds_bucket{le="1",protocol="v2"} 100
coalmine_request_duration_seconds_bucket{le="+Inf",protocol="v2"} 100
coalmine_predictions_total{class="setosa"} 70
coalmine_predictions_total{class="virginica"} 30
coalmine_input_rows_total 100
coalmine_input_out_of_range_rows_total 4
coalmine_feature_bin_total{feature="petal_length",bin="0"} 40
coalmine_feature_bin_total{feature="petal_length",bin="1"} 60
"""
POD_B = """
coalmine_requests_total{code="200",protocol="v2"} 10
coalmine_request_duration_seconds_bucket{le="1.0",protocol="v1"} 10
coalmine_request_duration_seconds_bucket{le="+Inf",protocol="v1"} 10
coalmine_prediction_value_bucket{le="0.1"} 3
coalmine_prediction_value_bucket{le="+Inf"} 10
"""


def test_aggregate_sums_pods_and_counts_only_5xx_as_errors() -> None:
    counters = aggregate([parse_metrics(POD_A), parse_metrics(POD_B)])
    assert counters.pods == 2
    assert counters.requests == 110
    assert counters.server_errors == 5
    assert counters.latency_buckets == {"0.01": 60, "1.0": 110, "+Inf": 110}
    assert counters.predictions == {"setosa": 70, "virginica": 30}
    assert counters.prediction_buckets == {"0.1": 3, "+Inf": 10}
    assert counters.input_rows == 100
    assert counters.out_of_range_rows == 4
    assert counters.feature_bins == {"petal_length": {"0": 40, "1": 60}}
    assert VariantCounters.model_validate(counters.to_json()) == counters


def test_le_keys_are_canonical() -> None:
    assert le_key("1") == le_key("1.0") == le_key("1e0") == "1.0"
    assert le_key("+Inf") == "+Inf"


def test_window_is_a_baseline_without_previous() -> None:
    current = aggregate([parse_metrics(POD_A)])
    w = window(None, current)
    assert w.baseline
    assert w.snapshot == current


def test_window_deltas() -> None:
    before = VariantCounters(
        pods=1,
        requests=100,
        server_errors=1,
        latency_buckets={"1.0": 100},
        predictions={"a": 10},
        feature_bins={"f": {"0": 5}},
    )
    after = VariantCounters(
        pods=2,
        requests=150,
        server_errors=4,
        latency_buckets={"1.0": 150},
        predictions={"a": 12, "b": 3},
        feature_bins={"f": {"0": 9}, "g": {"0": 1}},
    )
    w = window(before, after)
    assert not w.baseline
    assert (w.requests, w.server_errors) == (50, 3)
    assert w.latency_buckets == {"1.0": 50}
    assert w.predictions == {"a": 2, "b": 3}
    assert w.feature_bins == {"f": {"0": 4}, "g": {"0": 1}}


def test_counter_reset_or_lost_pod_restarts_the_window() -> None:
    before = VariantCounters(pods=2, requests=100, predictions={"a": 10})
    assert window(before, VariantCounters(pods=2, requests=20, predictions={"a": 11})).baseline
    assert window(before, VariantCounters(pods=2, requests=120, predictions={"a": 9})).baseline
    assert window(before, VariantCounters(pods=2, requests=120, predictions={})).baseline
    assert window(before, VariantCounters(pods=1, requests=120, predictions={"a": 11})).baseline


def test_window_after_a_failed_scrape_is_a_baseline() -> None:
    assert window(VariantCounters(pods=0), VariantCounters(pods=1, requests=9)).baseline
