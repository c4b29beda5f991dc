"""Turn scraped samples into per-variant counters, and two snapshots into a window.

The snapshot is a sum over the variant's pods (small, stored in status). A sum
cannot tell which pod restarted, so a window in which any counter went down, a
pod disappeared, or that starts from a failed scrape (no pods) is not trusted:
it becomes a baseline and the next window starts from the new snapshot. Guessing (Prometheus'
per-series reset rule applied to a sum) could attribute a pod's whole lifetime
to one window and fail a healthy canary.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from coalmine.analysis.exposition import Sample
from coalmine.api.counters import VariantCounters

REQUESTS = "coalmine_requests_total"
LATENCY_BUCKET = "coalmine_request_duration_seconds_bucket"
PREDICTIONS = "coalmine_predictions_total"
PREDICTION_BUCKET = "coalmine_prediction_value_bucket"
INPUT_ROWS = "coalmine_input_rows_total"
OUT_OF_RANGE_ROWS = "coalmine_input_out_of_range_rows_total"
FEATURE_BIN = "coalmine_feature_bin_total"
MIRROR_REQUESTS = "coalmine_mirror_requests_total"
MIRROR_COMPARED = "coalmine_mirror_compared_rows_total"
MIRROR_AGREEING = "coalmine_mirror_agreeing_rows_total"
MIRROR_DELTA_BUCKET = "coalmine_mirror_delta_bucket"
FEEDBACK_ROWS = "coalmine_feedback_rows_total"
FEEDBACK_CORRECT = "coalmine_feedback_correct_rows_total"
FEEDBACK_ABS_ERROR_SUM = "coalmine_feedback_abs_error_sum"
UNANSWERED = ("timeout", "unreachable")
"""Mirror outcomes that are the canary's failures although it counted no error itself."""

Tally = dict[str, float]


@dataclass(frozen=True)
class VariantWindow:
    """What one variant did between two snapshots (counts, not cumulative totals).

    `baseline` means there is no usable window (no earlier snapshot, or counters
    were lost to a restart): the measurement only records where the next one starts.
    """

    snapshot: VariantCounters
    baseline: bool = False
    requests: float = 0.0
    server_errors: float = 0.0
    latency_buckets: Tally = field(default_factory=dict)
    predictions: Tally = field(default_factory=dict)
    prediction_buckets: Tally = field(default_factory=dict)
    input_rows: float = 0.0
    out_of_range_rows: float = 0.0
    feature_bins: dict[str, Tally] = field(default_factory=dict)
    compared_rows: float = 0.0
    agreeing_rows: float = 0.0
    delta_buckets: Tally = field(default_factory=dict)
    unanswered_mirrors: float = 0.0
    labelled_rows: float = 0.0
    correct_rows: float = 0.0
    absolute_error: float = 0.0


def le_key(text: str) -> str:
    """Canonical text of a bucket bound, so `1`, `1.0` and `1e0` are one key."""
    value = float(text)
    return "+Inf" if math.isinf(value) else repr(value)


def aggregate(samples_per_pod: Iterable[list[Sample]]) -> VariantCounters:
    """Sum the series the analysis needs over the pods of one variant."""
    totals: dict[str, float] = {
        "requests": 0.0,
        "errors": 0.0,
        "rows": 0.0,
        "oor": 0.0,
        "compared": 0.0,
        "agreeing": 0.0,
        "unanswered": 0.0,
        "labelled": 0.0,
        "correct": 0.0,
        "abs_error": 0.0,
    }
    latency: Tally = {}
    predictions: Tally = {}
    values: Tally = {}
    deltas: Tally = {}
    bins: dict[str, Tally] = {}
    pods = 0
    for samples in samples_per_pod:
        pods += 1
        for s in samples:
            if s.name == REQUESTS:
                totals["requests"] += s.value
                if (s.label("code") or "").startswith("5"):
                    totals["errors"] += s.value
            elif s.name == LATENCY_BUCKET:
                _add(latency, le_key(s.label("le") or "+Inf"), s.value)
            elif s.name == PREDICTIONS:
                _add(predictions, s.label("class") or "", s.value)
            elif s.name == PREDICTION_BUCKET:
                _add(values, le_key(s.label("le") or "+Inf"), s.value)
            elif s.name == INPUT_ROWS:
                totals["rows"] += s.value
            elif s.name == OUT_OF_RANGE_ROWS:
                totals["oor"] += s.value
            elif s.name == FEATURE_BIN:
                _add(bins.setdefault(s.label("feature") or "", {}), s.label("bin") or "", s.value)
            elif s.name == MIRROR_COMPARED:
                totals["compared"] += s.value
            elif s.name == MIRROR_AGREEING:
                totals["agreeing"] += s.value
            elif s.name == MIRROR_DELTA_BUCKET:
                _add(deltas, le_key(s.label("le") or "+Inf"), s.value)
            elif s.name == MIRROR_REQUESTS and s.label("outcome") in UNANSWERED:
                totals["unanswered"] += s.value
            elif s.name in _SCALARS:
                totals[_SCALARS[s.name]] += s.value
    return VariantCounters(
        pods=pods,
        requests=totals["requests"],
        server_errors=totals["errors"],
        latency_buckets=latency,
        predictions=predictions,
        prediction_buckets=values,
        input_rows=totals["rows"],
        out_of_range_rows=totals["oor"],
        feature_bins=bins,
        compared_rows=totals["compared"],
        agreeing_rows=totals["agreeing"],
        delta_buckets=deltas,
        unanswered_mirrors=totals["unanswered"],
        labelled_rows=totals["labelled"],
        correct_rows=totals["correct"],
        absolute_error=totals["abs_error"],
    )


_SCALARS = {
    FEEDBACK_ROWS: "labelled",
    FEEDBACK_CORRECT: "correct",
    FEEDBACK_ABS_ERROR_SUM: "abs_error",
}
"""Series summed as they come, by the total they add to."""


def _add(tally: Tally, key: str, value: float) -> None:
    tally[key] = tally.get(key, 0.0) + value


def window(previous: VariantCounters | None, current: VariantCounters) -> VariantWindow:
    """The counts between `previous` and `current`; a baseline when there is no trustworthy
    previous snapshot."""
    if previous is None or previous.pods == 0 or current.pods < previous.pods:
        return VariantWindow(snapshot=current, baseline=True)
    deltas = [
        _tally_delta(previous.latency_buckets, current.latency_buckets),
        _tally_delta(previous.predictions, current.predictions),
        _tally_delta(previous.prediction_buckets, current.prediction_buckets),
        _tally_delta(previous.delta_buckets, current.delta_buckets),
        *(
            _tally_delta(previous.feature_bins.get(f, {}), bins)
            for f, bins in current.feature_bins.items()
        ),
    ]
    scalars = [
        current.requests - previous.requests,
        current.server_errors - previous.server_errors,
        current.input_rows - previous.input_rows,
        current.out_of_range_rows - previous.out_of_range_rows,
        current.compared_rows - previous.compared_rows,
        current.agreeing_rows - previous.agreeing_rows,
        current.unanswered_mirrors - previous.unanswered_mirrors,
        current.labelled_rows - previous.labelled_rows,
        current.correct_rows - previous.correct_rows,
        current.absolute_error - previous.absolute_error,
    ]
    if any(d is None for d in deltas) or any(s < 0 for s in scalars):
        return VariantWindow(snapshot=current, baseline=True)
    latency, predictions, values, mirror_deltas, *bins = (d or {} for d in deltas)
    return VariantWindow(
        snapshot=current,
        requests=scalars[0],
        server_errors=scalars[1],
        latency_buckets=latency,
        predictions=predictions,
        prediction_buckets=values,
        input_rows=scalars[2],
        out_of_range_rows=scalars[3],
        feature_bins=dict(zip(current.feature_bins, bins, strict=True)),
        compared_rows=scalars[4],
        agreeing_rows=scalars[5],
        delta_buckets=mirror_deltas,
        unanswered_mirrors=scalars[6],
        labelled_rows=scalars[7],
        correct_rows=scalars[8],
        absolute_error=scalars[9],
    )


def _tally_delta(previous: Mapping[str, float], current: Mapping[str, float]) -> Tally | None:
    """Per-key increase; None when a key went down or vanished (a reset)."""
    if any(key not in current for key in previous):
        return None
    delta = {key: value - previous.get(key, 0.0) for key, value in current.items()}
    return None if any(v < 0 for v in delta.values()) else delta
