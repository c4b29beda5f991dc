"""Canary analysis: parse the serving pods' metrics, window them, and judge them."""

from coalmine.analysis.counters import VariantWindow, aggregate, window
from coalmine.analysis.exposition import Sample, parse_metrics
from coalmine.analysis.queries import render_query
from coalmine.analysis.verdict import Measurement, measure
from coalmine.api.counters import VariantCounters
from coalmine.api.deployment import ModelDeployment


def previous_snapshots(
    md: ModelDeployment,
) -> tuple[VariantCounters | None, VariantCounters | None]:
    """Where the next window starts: (canary, stable) counters of the last measurement."""
    run = md.status.analysis_run if md.status else None
    if run is None:
        return None, None
    return run.canary_snapshot, run.stable_snapshot


__all__ = [
    "Measurement",
    "Sample",
    "VariantCounters",
    "VariantWindow",
    "aggregate",
    "measure",
    "parse_metrics",
    "previous_snapshots",
    "render_query",
    "window",
]
