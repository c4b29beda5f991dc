"""Monitoring's part of a plan: new check states, the ModelHealthy condition, Events and
webhook calls, from the previous status and this reconcile's scrape (if one was due).

Each variant's window runs from its baseline in status to this scrape, as long as
the variant still serves the same version; a new version starts its checks afresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from coalmine.analysis.counters import window
from coalmine.api.base import ConditionStatus
from coalmine.api.counters import VariantCounters
from coalmine.api.deployment import ModelDeployment
from coalmine.api.modelversion import ModelVersion
from coalmine.api.monitoring import Baseline, CheckStatus, MonitoringCheck, MonitoringStatus
from coalmine.monitoring.hysteresis import advance
from coalmine.monitoring.judge import judge, reason
from coalmine.rollout import reasons

Variant = Literal["stable", "canary"]


@dataclass(frozen=True)
class VariantScrape:
    """One variant's pods, scraped for monitoring."""

    variant: Variant
    version: str
    """The version label its pods serve."""
    model_version: str
    """Its ModelVersion, whose reference drift is measured against."""
    counters: VariantCounters


@dataclass(frozen=True)
class MonitoringScrape:
    """What a due monitoring measurement read."""

    variants: tuple[VariantScrape, ...]
    prometheus: Mapping[str, float | Exception] = field(default_factory=dict)
    """Each prometheus check's query result, or the exception the query raised."""


@dataclass(frozen=True)
class Notification:
    """A webhook call for a check that started firing."""

    url: str
    timeout_seconds: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Health:
    """The ModelHealthy condition's status, reason and message."""

    status: ConditionStatus
    reason: str
    message: str


@dataclass
class Monitored:
    """Monitoring's share of a plan."""

    status: MonitoringStatus | None
    health: Health | None
    """None: no checks, no condition."""
    events: list[tuple[Literal["Normal", "Warning"], str, str]] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)


def monitor(
    md: ModelDeployment,
    checks: list[MonitoringCheck],
    scrape: MonitoringScrape | None,
    versions: Mapping[str, ModelVersion],
    now: datetime,
) -> Monitored:
    """Advance every check with this reconcile's scrape (None: not due, states stay)."""
    previous = md.status.monitoring if md.status is not None else None
    if not checks:
        return Monitored(None, None)
    if scrape is None:
        status = previous or MonitoringStatus()
        return Monitored(status, health(status, checks))
    before = {(c.name, c.variant): c for c in previous.checks} if previous else {}
    baselines = {b.variant: b for b in previous.baselines} if previous else {}
    result = Monitored(MonitoringStatus(measured_at=now), None)
    assert result.status is not None
    for seen in scrape.variants:
        base = baselines.get(seen.variant)
        start = base.counters if base is not None and base.version == seen.version else None
        win = window(start, seen.counters)
        version = versions.get(seen.model_version)
        reference = version.spec.reference if version is not None else None
        for check in checks:
            if check.prometheus is not None and seen.variant != "stable":
                continue  # one query, judged once
            old = before.get((check.name, seen.variant))
            if old is None or old.version != seen.version:
                old = CheckStatus(
                    name=check.name, variant=seen.variant, version=seen.version, since=now
                )
            reading = judge(check, win, scrape.prometheus, reference)
            state, transition = advance(old, check, reading, now)
            result.status.checks.append(state)
            where = f"{seen.variant} {seen.version}: {state.message}"
            if transition == "fired":
                result.events.append(("Warning", reasons.CHECK_FIRING, where))
                if md.spec.monitoring is not None and md.spec.monitoring.webhook is not None:
                    hook = md.spec.monitoring.webhook
                    body = _announcement(md, seen, check, state)
                    result.notifications.append(Notification(hook.url, hook.timeout_seconds, body))
            elif transition == "resolved":
                result.events.append(("Normal", reasons.CHECK_RESOLVED, where))
        result.status.baselines.append(
            Baseline(variant=seen.variant, version=seen.version, counters=seen.counters)
        )
    result.health = health(result.status, checks)
    return result


def health(status: MonitoringStatus, checks: list[MonitoringCheck]) -> Health:
    """False while any check fires (reason: the first one's), Unknown before any figure."""
    by_name = {c.name: c for c in checks}
    states = [c for c in status.checks if c.name in by_name]
    firing = [c for c in states if c.state == "Firing"]
    if firing:
        text = "; ".join(f"{c.variant} {c.version}: {c.message}" for c in firing)
        return Health("False", reason(by_name[firing[0].name]), text)
    if all(c.state == "Unknown" for c in states):
        return Health("Unknown", reasons.AWAITING_MEASUREMENT, "no check has a figure yet")
    ok = sum(c.state == "Ok" for c in states)
    text = f"{ok} of {len(states)} check readings within bounds"
    pending = [
        f"pending {c.variant} {c.version}: {c.message}" for c in states if c.state == "Pending"
    ]
    return Health("True", reasons.CHECKS_PASSING, "; ".join([text, *pending]))


def _announcement(
    md: ModelDeployment, seen: VariantScrape, check: MonitoringCheck, state: CheckStatus
) -> dict[str, Any]:
    """The webhook's JSON body: enough to start a retraining pipeline without a lookup.
    `id` is the same for every delivery of this firing, so a receiver can drop repeats."""
    namespace = md.metadata.namespace or "default"
    since = state.since.isoformat() if state.since is not None else None
    return {
        "id": f"{md.metadata.uid or md.metadata.name}/{seen.variant}/{check.name}/{state.fired}",
        "namespace": namespace,
        "deployment": md.metadata.name,
        "variant": seen.variant,
        "version": seen.version,
        "modelVersion": seen.model_version,
        "check": check.name,
        "metric": check.builtin.metric if check.builtin is not None else "prometheus",
        "reason": reason(check),
        "value": state.value,
        "threshold": check.threshold.to_json(),
        "message": state.message,
        "firingSince": since,
    }
