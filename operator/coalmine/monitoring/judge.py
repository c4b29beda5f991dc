"""One check on one variant's window: a figure, and whether it is within bounds.

The built-in figures are the analysis ones (analysis/builtin.py) computed on the
variant alone: the reference it is compared with is the ModelVersion's, never
another variant, so a check means the same during a rollout and after it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from coalmine.analysis.builtin import compute, shift_from_reference
from coalmine.analysis.counters import VariantWindow
from coalmine.analysis.verdict import broken_bound, num, prometheus_figure, range_text
from coalmine.api.counters import VariantCounters
from coalmine.api.deployment import Outcome
from coalmine.api.modelversion import Reference
from coalmine.api.monitoring import MonitoringCheck
from coalmine.rollout import reasons

NOTHING = VariantWindow(snapshot=VariantCounters())
"""The other side of a figure computed on one variant: no traffic, no comparison."""

REASONS = {
    "errorRate": reasons.ERROR_RATE,
    "latencyP50": reasons.LATENCY,
    "latencyP95": reasons.LATENCY,
    "latencyP99": reasons.LATENCY,
    "inputDrift": reasons.INPUT_DRIFT,
    "outOfDistribution": reasons.OUT_OF_DISTRIBUTION,
    "accuracy": reasons.ACCURACY,
    "meanAbsoluteError": reasons.MEAN_ABSOLUTE_ERROR,
    "predictionShift": reasons.PREDICTION_SHIFT,
}


@dataclass(frozen=True)
class Reading:
    """A check's judgement of one window."""

    outcome: Outcome
    value: float | None
    message: str


def reason(check: MonitoringCheck) -> str:
    """The condition reason a firing `check` gives."""
    if check.builtin is None:
        return reasons.PROMETHEUS_CHECK
    return REASONS[check.builtin.metric]


def judge(
    check: MonitoringCheck,
    window: VariantWindow | None,
    prometheus: Mapping[str, float | Exception],
    reference: Reference | None,
) -> Reading:
    """Judge `check` on a variant's window (None: no window yet, the first scrape)."""
    if check.builtin is not None:
        if window is None or window.baseline:
            return Reading("Inconclusive", None, f"{check.name}: window starts")
        if check.builtin.metric == "predictionShift":
            figure = shift_from_reference(window, reference)
        else:
            figure = compute(check.builtin.metric, window, NOTHING, reference)
        if figure.missing is None and figure.sample_count < check.min_sample_count:
            why = f"too little traffic: {figure.sample_count} samples < {check.min_sample_count}"
            return Reading("Inconclusive", _finite(figure.value), f"{check.name}: {why}")
    else:
        figure = prometheus_figure(prometheus.get(check.name))
    if figure.missing is not None:
        return Reading("Error", None, f"{check.name}: {figure.missing}")
    value = _finite(figure.value)
    if value is None:
        return Reading("Inconclusive", None, f"{check.name}: no data in the window")
    text = f"{check.name} {num(value)}"
    if figure.detail is not None:
        text += f" ({figure.detail})"
    broken = broken_bound(value, check.threshold)
    if broken is None:
        return Reading("Successful", value, f"{text} within {range_text(check.threshold)}")
    return Reading("Failed", value, f"{text} {broken}")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
