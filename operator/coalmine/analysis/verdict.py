"""Judge one measurement: each metric against its threshold, then the measurement overall.

No data is never a failure: too few samples make a metric Inconclusive (the
rollout holds), an unreachable provider makes it Error (reported, also held).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from coalmine.analysis.builtin import Figure, compute
from coalmine.analysis.counters import VariantWindow
from coalmine.api.counters import VariantCounters
from coalmine.api.deployment import MetricResult, Outcome
from coalmine.api.modelversion import Reference
from coalmine.api.strategy import Analysis, AnalysisMetric, Threshold

_SEVERITY: tuple[Outcome, ...] = ("Failed", "Error", "Inconclusive", "Successful")


@dataclass(frozen=True)
class Measurement:
    """One analysis measurement, ready for `plan` (which records it in status)."""

    outcome: Outcome
    metrics: list[MetricResult]
    time: datetime
    canary_snapshot: VariantCounters
    stable_snapshot: VariantCounters
    baseline: bool = False
    """No window yet (first scrape of the step, or counters lost to a restart): the
    snapshots start the next window and nothing is judged."""
    failures: list[str] = field(default_factory=list)
    """The failing metrics' messages, for the rollback reason."""


def measure(
    analysis: Analysis,
    canary: VariantWindow,
    stable: VariantWindow,
    prometheus: Mapping[str, float | Exception],
    now: datetime,
    *,
    canary_snapshot: VariantCounters | None = None,
    stable_snapshot: VariantCounters | None = None,
    reference: Reference | None = None,
) -> Measurement:
    """Judge every metric of `analysis` over the windows; `prometheus` maps a prometheus
    metric's name to its query result or the exception the query raised."""
    snapshots = (canary_snapshot or canary.snapshot, stable_snapshot or stable.snapshot)
    uses_builtin = any(m.provider == "builtin" for m in analysis.metrics)
    if uses_builtin and (canary.baseline or stable.baseline):
        return Measurement("Inconclusive", [], now, *snapshots, baseline=True)
    results = [_judge(m, canary, stable, prometheus, reference) for m in analysis.metrics]
    outcome = min((r.outcome for r in results), key=_SEVERITY.index)
    failures = [r.message or r.name for r in results if r.outcome == "Failed"]
    return Measurement(outcome, results, now, *snapshots, failures=failures)


def _judge(
    metric: AnalysisMetric,
    canary: VariantWindow,
    stable: VariantWindow,
    prometheus: Mapping[str, float | Exception],
    reference: Reference | None,
) -> MetricResult:
    if metric.builtin is not None:
        figure = compute(metric.builtin.metric, canary, stable, reference)
    else:
        figure = prometheus_figure(prometheus.get(metric.name))
    if figure.missing is not None:
        return _result(metric, "Error", figure, figure.missing)
    if metric.builtin is not None and figure.sample_count < metric.min_sample_count:
        why = f"too little traffic: {figure.sample_count} samples < {metric.min_sample_count}"
        return _result(metric, "Inconclusive", figure, why)
    if figure.value is None or math.isnan(figure.value):
        return _result(metric, "Inconclusive", figure, "no data in the window")
    broken = broken_bound(figure.value, metric.threshold)
    text = f"{metric.name} {num(figure.value)}"
    if figure.detail is not None:
        text += f" ({figure.detail})"
    stable_text = "" if figure.stable_value is None else f", {num(figure.stable_value)} stable"
    if broken is None:
        return _result(
            metric, "Successful", figure, f"{text} within {range_text(metric.threshold)}"
        )
    return _result(metric, "Failed", figure, f"{text} {broken} (canary){stable_text}")


def prometheus_figure(result: float | Exception | None) -> Figure:
    if result is None:
        return Figure(None, None, 0, "no query result")
    if isinstance(result, Exception):
        return Figure(None, None, 0, f"query failed: {result}")
    return Figure(result, None, 0)


def broken_bound(value: float, threshold: Threshold) -> str | None:
    if threshold.max is not None and value > threshold.max:
        return f"> max {num(threshold.max)}"
    if threshold.min is not None and value < threshold.min:
        return f"< min {num(threshold.min)}"
    return None


def range_text(threshold: Threshold) -> str:
    low = "" if threshold.min is None else f"min {num(threshold.min)}"
    high = "" if threshold.max is None else f"max {num(threshold.max)}"
    return " and ".join(p for p in (low, high) if p)


def num(value: float) -> str:
    return f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.3g}"


def _result(metric: AnalysisMetric, outcome: Outcome, figure: Figure, message: str) -> MetricResult:
    return MetricResult(
        name=metric.name,
        outcome=outcome,
        value=_finite(figure.value),
        stable_value=_finite(figure.stable_value),
        sample_count=figure.sample_count if metric.builtin is not None else None,
        message=message,
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
