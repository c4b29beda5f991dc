"""Prometheus metrics the operator's analysis reads (documented in docs/serving.md).

Per-request work is one counter increment and one histogram observation on
pre-bound children. Per-row statistics (predicted classes, regression values,
drift bins) are accumulated in numpy arrays per batch and turned into metric
families only when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from coalmine_serving.batching import DISCONNECTED, EXPIRED, REFUSED
from coalmine_serving.drift import DriftTracker
from coalmine_serving.feedback import ABS_ERROR_BUCKETS, Ledger
from coalmine_serving.mirror import DELTA_BUCKETS, MirrorStats

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# Regression outputs: symmetric log-spaced buckets from 0.01 to 1000 in magnitude.
VALUE_BUCKETS = tuple(
    float(b) for b in np.concatenate([-np.logspace(3, -2, 6), [0.0], np.logspace(-2, 3, 6)])
)
LABELS = ("model", "version", "variant")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series double the scrape


class Metrics:
    """All series of one served model, labelled model, version and variant."""

    def __init__(
        self,
        model: str,
        version: str,
        variant: str,
        *,
        is_classifier: bool,
        drift: DriftTracker | None = None,
        mirror: MirrorStats | None = None,
        feedback: Ledger | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.labels = (model, version, variant)
        self._requests = Counter(
            "coalmine_requests",
            "Inference requests answered, by protocol and HTTP status code.",
            [*LABELS, "protocol", "code"],
            registry=self.registry,
        )
        self._errors = Counter(
            "coalmine_request_errors",
            "Inference requests answered with a 4xx or 5xx status.",
            [*LABELS, "protocol", "code"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "coalmine_request_duration_seconds",
            "Time from a complete request to its response being written, time queued included.",
            [*LABELS, "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._batch = Histogram(
            "coalmine_batch_size",
            "Rows per model call after micro-batching.",
            LABELS,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        ).labels(*self.labels)
        shed = Counter(
            "coalmine_requests_shed",
            "Inference requests not computed: refused or expired under overload (answered"
            " 503 with Retry-After), or dropped because the client had gone.",
            [*LABELS, "reason"],
            registry=self.registry,
        )
        self._shed = {r: shed.labels(*self.labels, r) for r in (REFUSED, EXPIRED, DISCONNECTED)}
        self._bound: dict[tuple[str, int], tuple[Any, Any, Any]] = {}
        self.predictions = PredictionStats(self.labels, is_classifier)
        self.registry.register(self.predictions)
        if drift is not None:
            self.registry.register(DriftCollector(self.labels, drift))
        self.drift = drift
        if mirror is not None:
            self.registry.register(MirrorCollector(self.labels, mirror))
        if feedback is not None:
            self.registry.register(FeedbackCollector(self.labels, feedback))
        ProcessCollector(registry=self.registry)

    def request(self, protocol: str, code: int, seconds: float) -> None:
        """Count one answered inference request."""
        bound = self._bound.get((protocol, code))
        if bound is None:
            labels = (*self.labels, protocol, str(code))
            bound = (
                self._requests.labels(*labels),
                self._errors.labels(*labels) if code >= 400 else None,
                self._latency.labels(*self.labels, protocol),
            )
            self._bound[(protocol, code)] = bound
        requests, errors, latency = bound
        requests.inc()
        if errors is not None:
            errors.inc()
        latency.observe(seconds)

    def mirrored(self, code: int) -> None:
        """Count one request a stable pod mirrored here (protocol "mirror"): its errors
        count as this variant's, its latency (a batch of many requests) stays out."""
        bound = self._bound.get(("mirror", code))
        if bound is None:
            labels = (*self.labels, "mirror", str(code))
            bound = (
                self._requests.labels(*labels),
                self._errors.labels(*labels) if code >= 400 else None,
                None,
            )
            self._bound[("mirror", code)] = bound
        bound[0].inc()
        if bound[1] is not None:
            bound[1].inc()

    def shed(self, reason: str) -> None:
        """Count one request not computed, by reason (batching.REFUSED, EXPIRED, ...)."""
        self._shed[reason].inc()

    def batch(self, x: npt.NDArray[np.float64], outputs: npt.NDArray[Any]) -> None:
        """Record one model call: its size, its predictions and input drift."""
        self._batch.observe(x.shape[0])
        self.predictions.observe(outputs)
        if self.drift is not None:
            self.drift.observe(x)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class PredictionStats(Collector):
    """Predicted classes (classifiers) or a value histogram (regressors)."""

    def __init__(self, labels: tuple[str, str, str], is_classifier: bool) -> None:
        self.labels = labels
        self.is_classifier = is_classifier
        self.by_class: dict[str, int] = {}
        self._edges = np.asarray(VALUE_BUCKETS)
        self.buckets = np.zeros(len(VALUE_BUCKETS) + 1, dtype=np.int64)
        self.total = 0.0

    def observe(self, outputs: npt.NDArray[Any]) -> None:
        if self.is_classifier:
            values, counts = np.unique(outputs, return_counts=True)
            for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                key = str(value)
                self.by_class[key] = self.by_class.get(key, 0) + count
        else:
            values = np.asarray(outputs, dtype=np.float64).ravel()
            index = np.searchsorted(self._edges, values, side="left")
            self.buckets += np.bincount(index, minlength=len(self.buckets))
            self.total += float(values.sum())

    def collect(self) -> Iterator[Metric]:
        if self.is_classifier:
            family = CounterMetricFamily(
                "coalmine_predictions",
                "Predicted rows by class.",
                labels=[*LABELS, "class"],
            )
            for key, count in sorted(self.by_class.items()):
                family.add_metric([*self.labels, key], count)
            yield family
            return
        cumulative = np.cumsum(self.buckets)
        points = [(repr(b), int(c)) for b, c in zip(VALUE_BUCKETS, cumulative[:-1], strict=True)]
        points.append(("+Inf", int(cumulative[-1])))
        family_h = HistogramMetricFamily(
            "coalmine_prediction_value", "Predicted values.", labels=list(LABELS)
        )
        family_h.add_metric(list(self.labels), points, sum_value=self.total)
        yield family_h


class DriftCollector(Collector):
    """PSI, out-of-range shares and raw bin counts, computed at scrape time."""

    def __init__(self, labels: tuple[str, str, str], tracker: DriftTracker) -> None:
        self.labels = labels
        self.tracker = tracker

    def collect(self) -> Iterator[Metric]:
        t = self.tracker
        names = t.reference.names
        psi = GaugeMetricFamily(
            "coalmine_feature_psi",
            "Population stability index of live inputs against the reference, per feature.",
            labels=[*LABELS, "feature"],
        )
        for name, value in zip(names, t.psi().tolist(), strict=True):
            psi.add_metric([*self.labels, name], value)
        yield psi
        rows = CounterMetricFamily(
            "coalmine_input_rows", "Input rows observed.", labels=list(LABELS)
        )
        rows.add_metric(list(self.labels), t.rows)
        yield rows
        outside = CounterMetricFamily(
            "coalmine_input_out_of_range_rows",
            "Input rows with at least one feature outside the reference range.",
            labels=list(LABELS),
        )
        outside.add_metric(list(self.labels), t.rows_out_of_range)
        yield outside
        share = GaugeMetricFamily(
            "coalmine_input_out_of_range_ratio",
            "Share of input rows with a feature outside the reference range, since start.",
            labels=list(LABELS),
        )
        share.add_metric(list(self.labels), t.rows_out_of_range / t.rows if t.rows else 0.0)
        yield share
        per_feature = CounterMetricFamily(
            "coalmine_feature_out_of_range",
            "Values outside the reference range, per feature.",
            labels=[*LABELS, "feature"],
        )
        bins = CounterMetricFamily(
            "coalmine_feature_bin",
            "Live input values per reference bin, per feature (for windowed PSI).",
            labels=[*LABELS, "feature", "bin"],
        )
        counts = t.counts.tolist()
        for i, name in enumerate(names):
            per_feature.add_metric([*self.labels, name], int(t.out_of_range[i]))
            for b in range(int(t.reference.n_bins[i])):
                bins.add_metric([*self.labels, name, str(b)], counts[i][b])
        yield per_feature
        yield bins


class MirrorCollector(Collector):
    """A stable pod's figures of its mirror to each canary version (mirror.py)."""

    def __init__(self, labels: tuple[str, str, str], stats: MirrorStats) -> None:
        self.labels = labels
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        names = [*LABELS, "canary"]
        requests = CounterMetricFamily(
            "coalmine_mirror_requests",
            "Requests copied to the canary, by what became of them.",
            labels=[*names, "outcome"],
        )
        compared = CounterMetricFamily(
            "coalmine_mirror_compared_rows", "Rows answered by both, compared.", labels=names
        )
        agreeing = CounterMetricFamily(
            "coalmine_mirror_agreeing_rows", "Compared rows on which both agreed.", labels=names
        )
        for canary, figures in self.stats.by_canary.items():
            for outcome, count in figures.outcomes.items():
                requests.add_metric([*self.labels, canary, outcome], count)
            compared.add_metric([*self.labels, canary], figures.compared)
            agreeing.add_metric([*self.labels, canary], figures.agreeing)
        yield requests
        yield compared
        yield agreeing
        if self.stats.classifier:
            confusion = CounterMetricFamily(
                "coalmine_mirror_confusion",
                "Compared rows by the stable answer's class and the canary's.",
                labels=[*names, "stable_class", "canary_class"],
            )
            for canary, table in self.stats.confusion.items():
                for (s, c), count in sorted(table.cells.items()):
                    confusion.add_metric([*self.labels, canary, s, c], count)
            yield confusion
            return
        delta = HistogramMetricFamily(
            "coalmine_mirror_delta",
            "|canary - stable| of compared regression rows.",
            labels=names,
        )
        for canary, counts in self.stats.deltas.items():
            cumulative = np.cumsum(counts)
            points = [
                (repr(b), int(c)) for b, c in zip(DELTA_BUCKETS, cumulative[:-1], strict=True)
            ]
            points.append(("+Inf", int(cumulative[-1])))
            delta.add_metric(
                [*self.labels, canary], points, sum_value=self.stats.delta_sums[canary]
            )
        yield delta


class FeedbackCollector(Collector):
    """Ground truth against this process's predictions (feedback.py): the operator reads
    accuracy as correct / rows and mean absolute error as the histogram's sum / count."""

    def __init__(self, labels: tuple[str, str, str], ledger: Ledger) -> None:
        self.labels = labels
        self.ledger = ledger

    def collect(self) -> Iterator[Metric]:
        stats, labels = self.ledger.stats, list(self.labels)
        items = CounterMetricFamily(
            "coalmine_feedback",
            "Feedback items by outcome (matched, duplicate, late, unknown, invalid, forwarded,"
            " unreachable).",
            labels=[*LABELS, "outcome"],
        )
        for outcome, count in stats.outcomes.items():
            items.add_metric([*labels, outcome], count)
        yield items
        rows = CounterMetricFamily(
            "coalmine_feedback_rows", "Predicted rows given their truth.", labels=list(LABELS)
        )
        rows.add_metric(labels, stats.rows)
        yield rows
        if stats.classifier:
            correct = CounterMetricFamily(
                "coalmine_feedback_correct_rows",
                "Predicted rows given their truth whose class was the truth.",
                labels=list(LABELS),
            )
            correct.add_metric(labels, stats.correct)
            yield correct
        else:
            cumulative = np.cumsum(stats.abs_error)
            points = [
                (repr(b), int(c)) for b, c in zip(ABS_ERROR_BUCKETS, cumulative[:-1], strict=True)
            ]
            points.append(("+Inf", int(cumulative[-1])))
            error = HistogramMetricFamily(
                "coalmine_feedback_abs_error",
                "|prediction - truth| of regression rows given their truth.",
                labels=list(LABELS),
            )
            error.add_metric(labels, points, sum_value=stats.abs_error_sum)
            yield error
        self.ledger.store.expire()
        stored = GaugeMetricFamily(
            "coalmine_feedback_stored_predictions",
            "Answered requests whose predictions are kept for feedback.",
            labels=list(LABELS),
        )
        stored.add_metric(labels, len(self.ledger.store))
        yield stored
