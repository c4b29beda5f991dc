"""Which checks run, and when the next measurement is due.

Without `spec.monitoring.checks`, a ModelVersion that carries a reference gets the
defaults below: they read only what every serving pod exports, hold for a minute
before firing and five minutes before clearing, so noise does not flip them. A
reference that records prediction shares adds predictionShift, and a ModelVersion
that states its training accuracy an accuracy floor.
"""

from __future__ import annotations

from datetime import datetime

from coalmine.api.base import parse_duration
from coalmine.api.deployment import ModelDeployment
from coalmine.api.modelversion import ModelVersion
from coalmine.api.monitoring import Monitoring, MonitoringCheck

DEFAULT_INTERVAL = Monitoring().interval
DEFAULT_MIN_SAMPLES = 100
DEFAULT_FOR = "1m"
DEFAULT_KEEP_FIRING_FOR = "5m"
DEFAULT_SHIFT = 0.2
"""Total variation from the recorded prediction shares that the default check allows."""
ACCURACY_MARGIN = 0.1
"""How far live accuracy may fall below the ModelVersion's stated accuracy by default."""

_DEFAULTS = (
    ("inputDrift", {"max": 0.25}),
    ("outOfDistribution", {"max": 0.05}),
    ("errorRate", {"max": 0.05}),
)


def _builtin(name: str, threshold: dict[str, float]) -> MonitoringCheck:
    return MonitoringCheck.model_validate(
        {
            "name": name,
            "provider": "builtin",
            "builtin": {"metric": name},
            "threshold": threshold,
            "minSampleCount": DEFAULT_MIN_SAMPLES,
            "for": DEFAULT_FOR,
            "keepFiringFor": DEFAULT_KEEP_FIRING_FOR,
        }
    )


def checks_for(md: ModelDeployment, version: ModelVersion | None) -> list[MonitoringCheck]:
    """The checks in force: those written, else the defaults a reference allows."""
    monitoring = md.spec.monitoring
    if monitoring is not None and monitoring.checks is not None:
        return monitoring.checks
    if version is None or version.spec.reference is None:
        return []
    checks = [_builtin(name, threshold) for name, threshold in _DEFAULTS]
    if version.spec.reference.predictions:
        checks.append(_builtin("predictionShift", {"max": DEFAULT_SHIFT}))
    trained = (version.spec.metrics or {}).get("accuracy")
    if trained is not None and trained > ACCURACY_MARGIN:
        checks.append(_builtin("accuracy", {"min": round(trained - ACCURACY_MARGIN, 6)}))
    return checks


def next_due(md: ModelDeployment) -> datetime | None:
    """When the next measurement is due; None before the first one (due at once)."""
    status = md.status
    measured = status.monitoring.measured_at if status and status.monitoring else None
    if measured is None:
        return None
    every = md.spec.monitoring.interval if md.spec.monitoring else DEFAULT_INTERVAL
    return measured + parse_duration(every)


def monitoring_due(md: ModelDeployment, checks: list[MonitoringCheck], now: datetime) -> bool:
    """Whether monitoring should measure in this reconcile."""
    if not checks:
        return False
    at = next_due(md)
    return at is None or now >= at
