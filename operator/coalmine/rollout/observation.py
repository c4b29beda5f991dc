"""What the operator saw during one reconcile: the only input of `plan` besides the resource."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from coalmine.analysis.verdict import Measurement
from coalmine.api.modelversion import ModelVersion
from coalmine.api.strategy import RolloutStrategySpec
from coalmine.monitoring.decide import MonitoringScrape


@dataclass(frozen=True)
class VariantObservation:
    """One variant's Deployment and pods, reduced to what rollout decisions need."""

    model_version: str
    """ModelVersion name the variant's Deployment runs."""
    template_hash: str
    """The pin its pod template was built from ("" for a Deployment of an operator before 0.2)."""
    replicas: int
    """Desired replicas of its Deployment."""
    ready_replicas: int
    rolled_out: bool
    """The Deployment converged on its current template (generation observed, all updated
    and ready)."""
    restarts: int
    """Highest container restart count among its current pods."""
    crash_looping: bool
    """A container waits in CrashLoopBackOff/Error, or terminated non-zero."""
    failure_message: str | None
    """E.g. the container's termination message."""


@dataclass(frozen=True)
class Observation:
    """The world as observed at `now`."""

    now: datetime
    """Aware UTC; `plan` never reads a clock."""
    target: ModelVersion | None
    """The ModelVersion spec.modelVersion names; None when it does not exist."""
    target_valid: bool
    """target.status.phase == "Validated"."""
    strategy: RolloutStrategySpec | None
    """The resolved strategyRef or the inline strategy; None when the ref is not found."""
    stable: VariantObservation | None
    """None: no stable Deployment yet."""
    canary: VariantObservation | None
    measurement: Measurement | None
    """Set only when the caller measured because `measurement_due` asked."""
    commands: dict[str, str]
    """Current values of COMMAND_ANNOTATIONS (command name -> token)."""
    model_versions: Mapping[str, ModelVersion]
    """ModelVersions found by name: the target and those the variants (and, for a pending
    `undo`, the history) serve; a name missing here does not exist."""
    watching_since: datetime | None = None
    """Since when this operator can act: its lease taken, or its process started. Progress
    deadlines never count the time before, when no operator could (an API-server outage, a
    failover, an upgrade): the canary must not pay for the control plane."""
    monitoring: MonitoringScrape | None = None
    """Set only when the caller scraped because a monitoring measurement was due."""

    def serving(self) -> bool:
        """Whether any pod serves, so that monitoring has something to measure: without one
        it waits (a pod turning ready is an event) instead of stamping empty measurements."""
        return any(v is not None and v.ready_replicas > 0 for v in (self.stable, self.canary))
