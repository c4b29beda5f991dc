"""What `plan` returns: the new status, what should run, and what to tell humans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from coalmine.api.deployment import ModelDeploymentStatus, Pin, VariantStatus
from coalmine.monitoring.decide import Notification


@dataclass(frozen=True)
class Intent:
    """What should run; the caller turns it into objects via builders and a traffic router."""

    stable_model_version: str | None
    """ModelVersion for the stable Deployment (None before the first serve)."""
    canary_model_version: str | None
    """ModelVersion for the canary Deployment (None: no canary)."""
    canary_weight: int
    """Percent of client traffic for the canary."""
    mirror: int
    """Percent of traffic copied to the canary as shadow traffic."""
    canary_replicas_zero: bool
    """Keep the canary Deployment but at 0 replicas (a rolled-back canary after its delay)."""
    stable_pin: Pin | None = None
    """What the stable Deployment is built from (None: from the live spec, for statuses
    written before pins)."""
    canary_pin: Pin | None = None
    stable_floor: int | None = None
    """Fewest stable pods the HPA may leave after a rollout ended (status.stableFloor)."""

    @classmethod
    def of(
        cls,
        stable: VariantStatus | None,
        canary: VariantStatus | None,
        weight: int,
        mirror: int,
        zero: bool,
        stable_floor: int | None,
    ) -> Intent:
        return cls(
            stable.model_version if stable else None,
            canary.model_version if canary else None,
            weight,
            mirror,
            zero,
            stable.pin if stable else None,
            canary.pin if canary else None,
            stable_floor,
        )


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event for one transition."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    """The decision of one reconcile."""

    status: ModelDeploymentStatus
    intent: Intent
    events: tuple[Event, ...]
    requeue_after: float | None
    """Seconds until something is due (pause end, next measurement, deadline, scale-down)."""
    notifications: tuple[Notification, ...] = ()
    """Webhook calls of monitoring checks that started firing, sent after the status write."""
