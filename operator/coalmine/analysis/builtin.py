"""The built-in metrics: one figure per variant window, and how much traffic backs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from coalmine.analysis.counters import VariantWindow
from coalmine.analysis.figures import per_bucket, psi, quantile, total_variation
from coalmine.api.modelversion import Reference
from coalmine.api.strategy import BuiltinMetricName


@dataclass(frozen=True)
class Figure:
    """A computed metric: canary value, stable value for comparison, samples behind it."""

    value: float | None
    stable_value: float | None
    sample_count: int
    missing: str | None = None
    """Why the value could not be computed although there was traffic (an Error)."""
    detail: str | None = None
    """Where the value comes from when it is the worst of several, e.g. `feature age`."""


DELTA_QUANTILE = 0.95


def compute(
    name: BuiltinMetricName,
    canary: VariantWindow,
    stable: VariantWindow,
    reference: Reference | None = None,
) -> Figure:
    """The figure `name` over the two windows."""
    if name == "predictionShift":
        return _prediction_shift(canary, stable)
    if name == "inputDrift":
        return _input_drift(canary, stable, reference)
    if name == "errorRate":
        return _error_rate(canary, stable)
    if name == "agreement":
        return Figure(
            _ratio(stable.agreeing_rows, stable.compared_rows), None, int(stable.compared_rows)
        )
    if name == "predictionDelta":
        return _prediction_delta(stable)
    if name in _FEEDBACK:
        return _from_feedback(name, canary, stable)
    per_variant = _PER_VARIANT[name]
    count = canary.input_rows if name == "outOfDistribution" else canary.requests
    return Figure(per_variant(canary), per_variant(stable), int(count))


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _latency_ms(q: float) -> Callable[[VariantWindow], float | None]:
    def figure(w: VariantWindow) -> float | None:
        seconds = quantile(q, w.latency_buckets)
        return None if seconds is None else seconds * 1000.0

    return figure


_PER_VARIANT: dict[str, Callable[[VariantWindow], float | None]] = {
    "latencyP50": _latency_ms(0.5),
    "latencyP95": _latency_ms(0.95),
    "latencyP99": _latency_ms(0.99),
    "outOfDistribution": lambda w: _ratio(w.out_of_range_rows, w.input_rows),
}
_FEEDBACK: dict[str, Callable[[VariantWindow], float | None]] = {
    "accuracy": lambda w: _ratio(w.correct_rows, w.labelled_rows),
    "meanAbsoluteError": lambda w: _ratio(w.absolute_error, w.labelled_rows),
}


def _from_feedback(name: str, canary: VariantWindow, stable: VariantWindow) -> Figure:
    """accuracy or meanAbsoluteError over the rows whose truth was posted as feedback; an
    Error on the wrong kind of model (a regressor's rows are never "correct")."""
    count = int(canary.labelled_rows)
    regressor = bool(canary.snapshot.prediction_buckets)
    if count and regressor == (name == "accuracy"):
        kind = "classifiers" if name == "accuracy" else "regressors"
        return Figure(None, None, count, f"{name} is for {kind}")
    per_variant = _FEEDBACK[name]
    return Figure(per_variant(canary), per_variant(stable), count)


def _error_rate(canary: VariantWindow, stable: VariantWindow) -> Figure:
    """Share of 5xx answers; the canary's include the copies of shadow steps it never
    answered (timed out or unreachable, as the stable pods that sent them count)."""
    failed = canary.server_errors + stable.unanswered_mirrors
    attempts = canary.requests + stable.unanswered_mirrors
    return Figure(
        _ratio(failed, attempts), _ratio(stable.server_errors, stable.requests), int(attempts)
    )


def _prediction_delta(stable: VariantWindow) -> Figure:
    """The 95th percentile of |canary - stable| over the rows the stable pods compared."""
    count = int(stable.compared_rows)
    if count and not stable.delta_buckets:
        return Figure(None, None, count, "no |delta| histogram: predictionDelta is for regressors")
    return Figure(quantile(DELTA_QUANTILE, stable.delta_buckets), None, count)


def _prediction_shift(canary: VariantWindow, stable: VariantWindow) -> Figure:
    """Total variation distance between the variants' predicted classes (classifiers) or
    predicted-value histogram buckets (regressors)."""
    if canary.predictions or stable.predictions:
        a, b = canary.predictions, stable.predictions
    else:
        a, b = per_bucket(canary.prediction_buckets), per_bucket(stable.prediction_buckets)
    count = int(min(sum(a.values()), sum(b.values())))
    return Figure(total_variation(a, b), None, count)


def shift_from_reference(w: VariantWindow, reference: Reference | None) -> Figure:
    """Total variation distance between one variant's predicted classes and the shares its
    ModelVersion recorded (reference.predictions): monitoring's predictionShift."""
    count = int(sum(w.predictions.values()))
    if reference is None or not reference.predictions:
        why = "the ModelVersion records no reference.predictions to compare with"
        return Figure(None, None, count, why if count else None)
    return Figure(total_variation(w.predictions, reference.predictions), None, count)


def _input_drift(
    canary: VariantWindow, stable: VariantWindow, reference: Reference | None
) -> Figure:
    """Largest per-feature PSI of the canary's window: against the ModelVersion reference
    when given (the bins the canary counts in), else against the stable's window."""
    count = int(canary.input_rows)
    if not canary.feature_bins:
        return Figure(None, None, count, "the canary exposes no feature bins (no reference?)")
    stable_value: float | None = None
    if reference is not None:
        expected = {f.name: list(f.fractions) for f in reference.features}
        stable_value = _max_psi(stable.feature_bins, expected)[0]
    else:
        expected = {f: _ordered(bins) for f, bins in stable.feature_bins.items()}
    value, feature = _max_psi(canary.feature_bins, expected)
    if value is None:
        return Figure(None, stable_value, count, "no feature shares bins with the baseline")
    return Figure(value, stable_value, count, detail=f"feature {feature}")


def _ordered(bins: dict[str, float]) -> list[float]:
    return [bins[k] for k in sorted(bins, key=int)]


def _max_psi(
    actual: dict[str, dict[str, float]], expected: dict[str, list[float]]
) -> tuple[float | None, str | None]:
    """The largest PSI of any feature, and that feature."""
    values = [
        (v, feature)
        for feature, bins in actual.items()
        if feature in expected and (v := psi(_ordered(bins), expected[feature])) is not None
    ]
    return max(values, default=(None, None))
