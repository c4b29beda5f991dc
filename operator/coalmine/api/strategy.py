"""RolloutStrategy: how a new model version earns production traffic.

A strategy is a list of steps walked in order; it is a resource of its own
(shared by many ModelDeployments) or written inline in a ModelDeployment.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from coalmine.api.base import (
    ApiModel,
    Duration,
    ObjectMeta,
    cel,
    map_list,
    parse_duration,
    validations,
)
from coalmine.api.governance import MAX_GROUPS, GroupName

MIN_INTERVAL = timedelta(seconds=1)
MAX_INTERVAL = timedelta(hours=24)
MAX_SECONDS = 30 * 24 * 3600
"""Most seconds of a deadline or delay (30 days, as the longest pause)."""
MAX_COUNT = 1000
Percent = Annotated[int, Field(ge=0, le=100)]

BuiltinMetricName = Literal[
    "errorRate",
    "latencyP50",
    "latencyP95",
    "latencyP99",
    "predictionShift",
    "inputDrift",
    "outOfDistribution",
    "agreement",
    "predictionDelta",
    "accuracy",
    "meanAbsoluteError",
]
"""Figures the operator computes itself from the serving pods' /metrics, per variant:
error rate (share of 5xx), latency quantiles in milliseconds, prediction shift between
canary and stable, input drift against the ModelVersion reference, and the share
of inputs outside the reference range; in shadow (`mirror`) steps, the share of copied rows
on which the canary's answer agreed with stable's (agreement) and, for regressors, the 95th
percentile of |canary - stable| (predictionDelta); from ground truth posted as feedback, the
share of labelled rows predicted right (accuracy, classifiers) and the mean |prediction - truth|
(meanAbsoluteError, regressors)."""


class Pause(ApiModel):
    """Hold the current weight for a while, or until someone runs `coalmine promote`."""

    duration: Duration | None = None
    """How long to hold; absent means wait for a manual promote."""


class BuiltinMetric(ApiModel):
    """A metric computed by the operator from the serving pods."""

    metric: BuiltinMetricName
    """errorRate, latencyP50/P95/P99 (milliseconds), predictionShift, inputDrift,
    outOfDistribution, agreement, predictionDelta, accuracy or meanAbsoluteError."""


class PrometheusMetric(ApiModel):
    """A PromQL query that returns one number for the measurement window."""

    address: Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://[^\s]+$")]
    """Base URL of the Prometheus server, e.g. http://prometheus.monitoring:9090."""
    query: Annotated[str, StringConstraints(min_length=1, max_length=8192)]
    """PromQL evaluated at each measurement; must yield a single scalar or one-element vector."""


class Threshold(ApiModel):
    """Acceptable range of a measured value; at least one bound."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("has(self.min) || has(self.max)", "threshold needs min, max or both"),
            cel(
                "!has(self.min) || !has(self.max) || self.min <= self.max",
                "threshold min must not exceed max",
            ),
        )
    )

    min: float | None = None
    """Lowest passing value."""
    max: float | None = None
    """Highest passing value."""

    @model_validator(mode="after")
    def _bounds(self) -> Threshold:
        if self.min is None and self.max is None:
            raise ValueError("threshold needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("threshold min must not exceed max")
        return self


PROVIDER_BLOCK = cel(
    "self.provider == 'builtin' ? has(self.builtin) && !has(self.prometheus)"
    " : has(self.prometheus) && !has(self.builtin)",
    "set exactly the block named by provider (builtin or prometheus)",
)


def interval_rules(what: str) -> list[dict[str, str]]:
    """CEL bounds of an `interval` field between MIN_INTERVAL and MAX_INTERVAL."""
    return [
        cel("duration(self.interval) >= duration('1s')", f"{what} interval must be at least 1s"),
        cel("duration(self.interval) <= duration('24h')", f"{what} interval must be at most 24h"),
    ]


def check_interval(text: str, what: str) -> None:
    """The Python side of `interval_rules`."""
    if parse_duration(text) < MIN_INTERVAL:
        raise ValueError(f"{what} interval must be at least 1s")
    if parse_duration(text) > MAX_INTERVAL:
        raise ValueError(f"{what} interval must be at most 24h")


class AnalysisMetric(ApiModel):
    """One figure measured at every analysis interval and compared with its threshold."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            PROVIDER_BLOCK,
        )
    )

    name: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    """Unique within the analysis; named in verdicts and rollback reasons."""
    provider: Literal["builtin", "prometheus"]
    """Where the figure comes from; set the block of the same name."""
    builtin: BuiltinMetric | None = None
    prometheus: PrometheusMetric | None = None
    threshold: Threshold
    min_sample_count: int = Field(default=10, ge=0, le=1_000_000_000)
    """Requests per variant a builtin measurement needs; fewer is Inconclusive, not Failed."""

    @model_validator(mode="after")
    def _provider_block(self) -> AnalysisMetric:
        block = self.builtin if self.provider == "builtin" else self.prometheus
        other = self.prometheus if self.provider == "builtin" else self.builtin
        if block is None or other is not None:
            raise ValueError("set exactly the block named by provider (builtin or prometheus)")
        return self


class Analysis(ApiModel):
    """Measure the canary repeatedly; fail the rollout when failures exceed the limit."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            *interval_rules("analysis"),
            cel(
                "self.failureLimit < self.count",
                "analysis failureLimit must be less than count, or a canary failing every"
                " measurement would pass",
                fieldPath=".failureLimit",
            ),
        )
    )

    interval: Duration = "10s"
    """Time between measurements, and the window each one covers."""
    count: int = Field(default=3, ge=1, le=MAX_COUNT)
    """Measurements to take; the step passes once all are taken within the limits."""
    failure_limit: int = Field(default=0, ge=0, le=MAX_COUNT - 1)
    """Failed measurements tolerated; one more rolls the canary back."""
    inconclusive_limit: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    """Inconclusive measurements (too little traffic) tolerated before the rollout pauses
    for a human; absent means hold and keep measuring."""
    metrics: list[AnalysisMetric] = Field(
        min_length=1, max_length=16, json_schema_extra=map_list("name")
    )
    """Figures judged at every measurement; any failing one fails the measurement."""

    @model_validator(mode="after")
    def _valid_analysis(self) -> Analysis:
        check_interval(self.interval, "analysis")
        if self.failure_limit >= self.count:
            raise ValueError(
                "analysis failureLimit must be less than count, or a canary failing every"
                " measurement would pass"
            )
        names = [m.name for m in self.metrics]
        if len(names) != len(set(names)):
            raise ValueError("analysis metric names must be unique")
        return self


class Step(ApiModel):
    """One rollout step; exactly one action."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "[has(self.setWeight), has(self.pause), has(self.analysis), has(self.mirror)]"
                ".filter(x, x).size() == 1",
                "each step must set exactly one of setWeight, pause, analysis, mirror",
            )
        )
    )

    set_weight: Percent | None = None
    """Share of requests (percent) the canary serves."""
    pause: Pause | None = None
    analysis: Analysis | None = None
    mirror: Percent | None = None
    """Percent of requests copied to the canary as shadow traffic; clients get stable's answer."""

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        actions = (self.set_weight, self.pause, self.analysis, self.mirror)
        if sum(a is not None for a in actions) != 1:
            raise ValueError("each step must set exactly one of setWeight, pause, analysis, mirror")
        return self


class RolloutStrategySpec(ApiModel):
    """Steps of a canary rollout and the limits that trigger automatic rollback."""

    steps: list[Step] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra=validations(
            cel(
                "self.map(s, has(s.setWeight), s.setWeight).isSorted()",
                "setWeight values must not decrease from one step to the next",
            )
        ),
    )
    """Walked in order once the canary is Ready; none means promote as soon as it is Ready."""
    progress_deadline_seconds: int = Field(default=600, ge=1, le=MAX_SECONDS)
    """Roll back when the canary is not Ready this long after it was created, or an analysis
    makes no progress this long; neither counts time before the operator last began to lead
    (or started), when no operator could act."""
    require_approval: bool = False
    """Hold the rollout until the ModelVersion carries the coalmine.dev/approved-by annotation."""
    approver_groups: list[GroupName] = Field(default_factory=list, max_length=MAX_GROUPS)
    """Only an approval stating one of these groups counts (coalmine.dev/approved-groups, which
    admission checks against the approver's own groups); set, it requires approval."""
    scale_down_delay_seconds: int = Field(default=30, ge=0, le=MAX_SECONDS)
    """Keep the previous pods this long after a promotion, so connections drain."""
    abort_scale_down_delay_seconds: int = Field(default=30, ge=0, le=MAX_SECONDS)
    """Keep the canary pods this long after a rollback, for debugging and draining."""
    max_canary_restarts: int = Field(default=3, ge=0, le=MAX_COUNT)
    """Container restarts of the canary that count as a crash loop and roll it back."""

    @model_validator(mode="after")
    def _weights_non_decreasing(self) -> RolloutStrategySpec:
        weights = self.weights
        if weights != sorted(weights):
            raise ValueError("setWeight values must not decrease from one step to the next")
        return self

    @property
    def weights(self) -> list[int]:
        """The setWeight values in step order."""
        return [s.set_weight for s in self.steps if s.set_weight is not None]


def summarize(spec: RolloutStrategySpec) -> str:
    """One line per strategy, e.g. `20% > analysis 3x10s > 50% > pause`, for humans."""
    return " > ".join(describe_step(step) for step in spec.steps) or "promote when Ready"


def describe_step(step: Step, detail: bool = False) -> str:
    """A step for humans; `detail` spells it out (for timelines) instead of abbreviating."""
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}%" if detail else f"{step.set_weight}%"
    if step.mirror is not None:
        return f"mirror {step.mirror}%"
    if step.analysis is not None:
        a = step.analysis
        if not detail:
            return f"analysis {a.count}x{a.interval}"
        names = ", ".join(m.name for m in a.metrics)
        return f"analysis {a.count} x every {a.interval} ({names})"
    assert step.pause is not None  # Step validates that exactly one action is set
    return f"pause {step.pause.duration}" if step.pause.duration else "pause until promote"


class RolloutStrategyStatus(ApiModel):
    """A summary the operator writes so `kubectl get` can show what a strategy does."""

    observed_generation: int | None = Field(default=None, ge=0)
    steps: int | None = Field(default=None, ge=0)
    """Number of steps."""
    summary: Annotated[str, StringConstraints(max_length=2048)] | None = None
    """The steps in one line, as produced by `summarize`."""


class RolloutStrategy(ApiModel):
    """A reusable rollout policy."""

    model_config = ConfigDict(extra="ignore")

    metadata: ObjectMeta
    spec: RolloutStrategySpec
    status: RolloutStrategyStatus | None = None
