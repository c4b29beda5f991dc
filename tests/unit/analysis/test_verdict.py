"""Judging measurements: thresholds, no-data rules, outcome precedence, every builtin metric."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from coalmine.analysis import VariantCounters, measure, window
from coalmine.analysis.counters import VariantWindow
from coalmine.api.modelversion import Reference
from coalmine.api.strategy import Analysis

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def builtin(name: str, metric: str, *, min_samples: int = 10, **threshold: float) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "builtin",
        "builtin": {"metric": metric},
        "threshold": threshold,
        "minSampleCount": min_samples,
    }


def prom(name: str, **threshold: float) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "prometheus",
        "prometheus": {"address": "http://prom:9090", "query": "up"},
        "threshold": threshold,
    }


def spec(*metrics: dict[str, Any]) -> Analysis:
    return Analysis.model_validate({"metrics": list(metrics)})


def win(**counts: Any) -> VariantWindow:
    return VariantWindow(snapshot=VariantCounters(pods=1), **counts)


GOOD = win(requests=100, server_errors=0, latency_buckets={"0.01": 90, "0.1": 100, "+Inf": 100})


def test_error_rate_failure_names_both_variants() -> None:
    canary = win(requests=100, server_errors=31)
    m = measure(spec(builtin("errorRate", "errorRate", max=0.05)), canary, GOOD, {}, NOW)
    assert m.outcome == "Failed"
    result = m.metrics[0]
    assert result.value == 0.31
    assert result.stable_value == 0
    assert result.sample_count == 100
    assert result.message == "errorRate 0.31 > max 0.05 (canary), 0.00 stable"
    assert m.failures == [result.message]
    assert m.time == NOW


def test_too_little_traffic_is_inconclusive_not_failed() -> None:
    canary = win(requests=3, server_errors=3)
    m = measure(spec(builtin("errorRate", "errorRate", max=0.05)), canary, GOOD, {}, NOW)
    assert m.outcome == "Inconclusive"
    assert m.metrics[0].message == "too little traffic: 3 samples < 10"


def test_latency_in_milliseconds() -> None:
    canary = win(requests=100, latency_buckets={"0.01": 10, "0.5": 100, "+Inf": 100})
    analysis = spec(builtin("p95", "latencyP95", max=300), builtin("p50", "latencyP50", min=1))
    m = measure(analysis, canary, GOOD, {}, NOW)
    p95, p50 = m.metrics
    assert p95.value == pytest.approx((0.01 + 0.49 * 85 / 90) * 1000)
    assert p95.outcome == "Failed"
    assert p50.outcome == "Successful"
    assert p95.message is not None
    assert p95.message.endswith("> max 300.00 (canary), 55.00 stable")


def test_prediction_shift_for_classifiers_and_regressors() -> None:
    shift = spec(builtin("shift", "predictionShift", max=0.2))
    same = measure(
        shift, win(predictions={"a": 50, "b": 50}), win(predictions={"a": 500, "b": 500}), {}, NOW
    )
    assert same.outcome == "Successful"
    assert same.metrics[0].value == 0
    assert same.metrics[0].sample_count == 100
    moved = measure(
        shift, win(predictions={"a": 80, "b": 20}), win(predictions={"a": 50, "b": 50}), {}, NOW
    )
    assert moved.metrics[0].value == pytest.approx(0.3)
    assert moved.outcome == "Failed"
    regress = measure(
        shift,
        win(prediction_buckets={"1.0": 0, "10.0": 100, "+Inf": 100}),
        win(prediction_buckets={"1.0": 100, "10.0": 100, "+Inf": 100}),
        {},
        NOW,
    )
    assert regress.metrics[0].value == 1


def test_prediction_shift_counts_the_smaller_variant() -> None:
    shift = spec(builtin("shift", "predictionShift", max=0.2))
    m = measure(shift, win(predictions={"a": 500}), win(predictions={"a": 4}), {}, NOW)
    assert m.outcome == "Inconclusive"
    assert m.metrics[0].sample_count == 4


def test_input_drift_against_reference_or_stable() -> None:
    drift = spec(builtin("drift", "inputDrift", max=0.25))
    canary = win(input_rows=100, feature_bins={"x": {"0": 90, "1": 10}})
    stable = win(input_rows=100, feature_bins={"x": {"0": 50, "1": 50}})
    reference = Reference.model_validate(
        {"features": [{"name": "x", "binEdges": [0, 1, 2], "fractions": [0.9, 0.1]}]}
    )
    against_ref = measure(drift, canary, stable, {}, NOW, reference=reference)
    assert against_ref.outcome == "Successful"
    assert against_ref.metrics[0].value == pytest.approx(0)
    assert against_ref.metrics[0].stable_value is not None
    against_stable = measure(drift, canary, stable, {}, NOW)
    assert against_stable.outcome == "Failed"
    no_bins = measure(drift, win(input_rows=100), stable, {}, NOW)
    assert no_bins.outcome == "Error"


def test_out_of_distribution_share() -> None:
    ood = spec(builtin("ood", "outOfDistribution", max=0.1))
    m = measure(
        ood,
        win(input_rows=200, out_of_range_rows=50),
        win(input_rows=10, out_of_range_rows=0),
        {},
        NOW,
    )
    assert m.metrics[0].value == 0.25
    assert m.metrics[0].stable_value == 0
    assert m.outcome == "Failed"


@pytest.mark.parametrize(
    ("result", "outcome", "message"),
    [
        (0.5, "Successful", "q 0.50 within min 0.10"),
        (0.01, "Failed", "q 0.01 < min 0.10 (canary)"),
        (float("nan"), "Inconclusive", "no data in the window"),
        (TimeoutError("timed out"), "Error", "query failed: timed out"),
        (None, "Error", "no query result"),
    ],
)
def test_prometheus_results(result: float | Exception | None, outcome: str, message: str) -> None:
    results = {} if result is None else {"q": result}
    m = measure(spec(prom("q", min=0.1)), GOOD, GOOD, results, NOW)
    assert m.outcome == outcome
    assert m.metrics[0].message == message
    assert m.metrics[0].sample_count is None


@pytest.mark.parametrize(
    ("outcomes", "overall"),
    [
        (["Successful", "Failed", "Error", "Inconclusive"], "Failed"),
        (["Successful", "Inconclusive", "Error"], "Error"),
        (["Inconclusive", "Successful"], "Inconclusive"),
        (["Successful", "Successful"], "Successful"),
    ],
)
def test_overall_outcome_precedence(outcomes: list[str], overall: str) -> None:
    values: dict[str, float | Exception] = {
        "Successful": 0.5,
        "Failed": 2.0,
        "Inconclusive": float("nan"),
        "Error": RuntimeError("down"),
    }
    metrics = [prom(f"m{i}", max=1.0) for i in range(len(outcomes))]
    results = {f"m{i}": values[o] for i, o in enumerate(outcomes)}
    assert measure(spec(*metrics), GOOD, GOOD, results, NOW).outcome == overall


def test_baseline_judges_nothing_and_keeps_snapshots() -> None:
    current = VariantCounters(pods=1, requests=5)
    stable = VariantCounters(pods=2, requests=50)
    m = measure(
        spec(builtin("e", "errorRate", max=0.05)),
        window(None, current),
        window(None, stable),
        {},
        NOW,
    )
    assert m.baseline
    assert m.metrics == []
    assert (m.canary_snapshot, m.stable_snapshot) == (current, stable)


def test_prometheus_only_analysis_needs_no_baseline() -> None:
    m = measure(spec(prom("q", max=1.0)), window(None, VariantCounters()), GOOD, {"q": 0.5}, NOW)
    assert not m.baseline
    assert m.outcome == "Successful"


def test_explicit_snapshots_win() -> None:
    snap = VariantCounters(pods=3)
    m = measure(
        spec(prom("q", max=1.0)),
        GOOD,
        GOOD,
        {"q": 0.5},
        NOW,
        canary_snapshot=snap,
        stable_snapshot=snap,
    )
    assert m.canary_snapshot == m.stable_snapshot == snap
