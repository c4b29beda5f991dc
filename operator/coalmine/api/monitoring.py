"""Day-2 monitoring: checks that keep watching every serving variant after it ships.

A check uses the vocabulary of a rollout's analysis metrics (builtin or prometheus,
a threshold, a minimum sample count) plus Prometheus-style hysteresis: it must breach
for `for` before it fires, and keeps firing for `keepFiringFor` after it last breached.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, model_validator

from coalmine.api.base import (
    ApiModel,
    Counter,
    Duration,
    Message,
    cel,
    map_list,
    validations,
)
from coalmine.api.counters import VariantCounters
from coalmine.api.strategy import PROVIDER_BLOCK, AnalysisMetric, check_interval, interval_rules

MONITORED = "ModelHealthy"
"""The condition monitoring sets: False while any check fires on any variant."""
COMPARATIVE = ("agreement", "predictionDelta")
"""Built-ins that compare a canary's answers with stable's: nothing to judge on one variant
alone (predictionShift, on one variant, compares with the ModelVersion's reference)."""

CheckState = Literal["Unknown", "Ok", "Pending", "Firing"]
"""No figure yet; within bounds; breaching for less than `for`; firing."""


class MonitoringCheck(AnalysisMetric):
    """A threshold on one figure of each serving variant, measured at every interval."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            PROVIDER_BLOCK,
            cel(
                "!has(self.builtin) || !(self.builtin.metric in ['agreement', 'predictionDelta'])",
                "agreement and predictionDelta compare a canary's answers with stable's;"
                " a monitoring check judges each variant alone",
                fieldPath=".builtin.metric",
            ),
        )
    )

    for_: Duration = Field(default="0s", alias="for")
    """How long the figure must stay out of bounds before the check fires (0s: at once)."""
    keep_firing_for: Duration = "1m"
    """How long a firing check stays firing once its figure is back within bounds, so one
    good window does not flip it."""

    @model_validator(mode="after")
    def _one_variant(self) -> MonitoringCheck:
        if self.builtin is not None and self.builtin.metric in COMPARATIVE:
            raise ValueError(
                "agreement and predictionDelta compare a canary's answers with stable's;"
                " a monitoring check judges each variant alone"
            )
        return self


class Webhook(ApiModel):
    """Where a firing check is announced with a JSON POST (e.g. to start retraining)."""

    url: Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://[^\s]+$")]
    """Receives one POST each time a check starts firing on a variant."""
    timeout_seconds: int = Field(default=5, ge=1, le=60)
    """How long one call may take; a failed call is retried once, then reported as an Event."""


class Monitoring(ApiModel):
    """Checks run on every serving variant, stable included, rollout or not."""

    model_config = ConfigDict(json_schema_extra=validations(*interval_rules("monitoring")))

    interval: Duration = "30s"
    """Time between measurements, and the window each one covers."""
    checks: list[MonitoringCheck] | None = Field(
        default=None, max_length=16, json_schema_extra=map_list("name")
    )
    """The checks; absent means the defaults (docs/monitoring.md) when the ModelVersion
    carries a reference, none otherwise; an empty list turns monitoring off."""
    webhook: Webhook | None = None

    @model_validator(mode="after")
    def _valid_monitoring(self) -> Monitoring:
        check_interval(self.interval, "monitoring")
        names = [c.name for c in self.checks or []]
        if len(names) != len(set(names)):
            raise ValueError("monitoring check names must be unique")
        return self


class CheckStatus(ApiModel):
    """Where one check stands on one variant."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    variant: Literal["stable", "canary"]
    version: Annotated[str, StringConstraints(max_length=63)]
    """The variant's version label when last measured."""
    state: CheckState = "Unknown"
    since: AwareDatetime | None = None
    """When the state began."""
    value: float | None = None
    """The last figure measured (None: too little traffic or no data)."""
    message: Message | None = None
    """The last judgement, e.g. `outOfDistribution 0.31 > max 0.05`."""
    breaching_since: AwareDatetime | None = None
    """Start of the current run of out-of-bounds measurements."""
    clear_since: AwareDatetime | None = None
    """While firing: start of the current run of in-bounds measurements."""
    fired: Counter = 0
    """Times this check fired on this variant."""


class Baseline(ApiModel):
    """One variant's counters at the last measurement: where its next window starts."""

    variant: Literal["stable", "canary"]
    version: Annotated[str, StringConstraints(max_length=63)]
    """The version these counters belong to; another version starts a new window."""
    counters: VariantCounters


class MonitoringStatus(ApiModel):
    """Monitoring's memory: where each window starts and the state of every check."""

    measured_at: AwareDatetime | None = None
    baselines: list[Baseline] = Field(default_factory=list, max_length=2)
    checks: list[CheckStatus] = Field(default_factory=list, max_length=64)
