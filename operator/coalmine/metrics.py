"""The operator's own Prometheus metrics: what rollouts do, and how reconciling goes.

Values are derived from each reconcile's decision, so they need no state of
their own; a restarted operator re-exports current weights and phases on its
first reconcile of each ModelDeployment.
"""

from __future__ import annotations

import math

from prometheus_client import Counter, Gauge, Histogram

from coalmine.api.deployment import ModelDeploymentStatus
from coalmine.rollout.plan import Event, Measurement

PHASES = ("Pending", "Progressing", "Paused", "Healthy", "Degraded", "RolledBack")
ROLLOUT_EVENTS = {
    "RolloutStarted": "started",
    "Promoted": "promoted",
    "RolledBack": "rolled_back",
    "Aborted": "aborted",
}

WEIGHT = Gauge(
    "coalmine_rollout_weight",
    "Percent of client traffic per variant.",
    ["namespace", "deployment", "variant"],
)
PHASE = Gauge(
    "coalmine_deployment_phase",
    "1 for the ModelDeployment's current phase, 0 for the others.",
    ["namespace", "deployment", "phase"],
)
ANALYSIS = Counter(
    "coalmine_analysis_results",
    "Analysis measurements by metric and outcome.",
    ["namespace", "deployment", "metric", "outcome"],
)
ROLLOUTS = Counter(
    "coalmine_rollouts",
    "Rollouts by what happened: started, promoted, rolled_back, aborted.",
    ["namespace", "deployment", "event"],
)
CHECK_VALUE = Gauge(
    "coalmine_monitoring_check_value",
    "Last figure of each monitoring check, per variant (NaN: none yet).",
    ["namespace", "deployment", "variant", "check"],
)
CHECK_FIRING = Gauge(
    "coalmine_monitoring_check_firing",
    "1 while a monitoring check fires on a variant, else 0.",
    ["namespace", "deployment", "variant", "version", "check"],
)
WEBHOOK = Counter(
    "coalmine_monitoring_webhook_calls",
    "Monitoring webhook calls by result: delivered or failed (after its retry).",
    ["namespace", "deployment", "result"],
)
RECONCILE = Histogram(
    "coalmine_reconcile_duration_seconds",
    "Time of one reconcile, by kind and result.",
    ["kind", "result"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def record_decision(
    namespace: str,
    name: str,
    status: ModelDeploymentStatus,
    events: tuple[Event, ...],
    measurement: Measurement | None,
) -> None:
    canary = status.canary.weight if status.canary is not None else 0
    WEIGHT.labels(namespace, name, "canary").set(canary)
    WEIGHT.labels(namespace, name, "stable").set(100 - canary if status.stable else 0)
    for phase in PHASES:
        PHASE.labels(namespace, name, phase).set(1 if status.phase == phase else 0)
    if measurement is not None and not measurement.baseline:
        for result in measurement.metrics:
            ANALYSIS.labels(namespace, name, result.name, result.outcome).inc()
    for event in events:
        kind = ROLLOUT_EVENTS.get(event.reason)
        if kind is not None:
            ROLLOUTS.labels(namespace, name, kind).inc()
    checks = status.monitoring.checks if status.monitoring is not None else []
    for check in checks:
        value = math.nan if check.value is None else check.value
        CHECK_VALUE.labels(namespace, name, check.variant, check.name).set(value)
        firing = 1 if check.state == "Firing" else 0
        CHECK_FIRING.labels(namespace, name, check.variant, check.version, check.name).set(firing)


def record_webhook(namespace: str, name: str, problem: str | None) -> None:
    """Count one webhook call by its result."""
    WEBHOOK.labels(namespace, name, "delivered" if problem is None else "failed").inc()
