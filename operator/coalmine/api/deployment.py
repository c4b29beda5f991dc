"""ModelDeployment: what serves a model, and the record of how its rollouts went."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, model_validator

from coalmine.api.base import (
    DNS_SUBDOMAIN_PATTERN,
    ApiModel,
    Conditions,
    Counter,
    Image,
    KubeName,
    Message,
    ModelVersionName,
    ObjectMeta,
    Quantity,
    cel,
    quantity_value,
    validations,
)
from coalmine.api.counters import VariantCounters
from coalmine.api.governance import MAX_COMMAND_RECORDS, Approval, CommandRecord
from coalmine.api.monitoring import Monitoring, MonitoringStatus
from coalmine.api.strategy import Percent, RolloutStrategySpec

# Condition types (kstatus: Ready, Reconciling, Stalled; plus rollout-specific ones).
READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
MODEL_VERSION_AVAILABLE = "ModelVersionAvailable"
"""True while the ModelVersion the stable pods serve exists as it was validated."""

# Commands of the `coalmine` CLI: it sets one of these annotations to a fresh token;
# the operator acts once per token and records it in status.handledCommands.
COMMAND_ANNOTATIONS = {
    "promote": "coalmine.dev/promote",
    "abort": "coalmine.dev/abort",
    "retry": "coalmine.dev/retry",
    "undo": "coalmine.dev/undo",
}

DEFAULT_REPLICAS = 1
MAX_REPLICAS = 1000
"""Most pods per variant: far inside int32, and beyond any one model's need."""

NATIVE_RESOURCES = ("cpu", "memory", "ephemeral-storage")
# The Pod API's resource names: a native one, or an extended resource `domain/name`
# (any domain but kubernetes.io's own, which only holds native names).
RESOURCE_NAME_PATTERN = (
    r"^(cpu|memory|ephemeral-storage"
    r"|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    r"/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$"
)
_RESERVED_DOMAIN = re.compile(r"^([^/]*[.])?kubernetes[.]io/|^requests[.]")
ResourceName = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=RESOURCE_NAME_PATTERN)
]
ResourceList = dict[ResourceName, Quantity]
_RESOURCE_LIST_RULES = validations(
    cel(
        "self.all(k, !k.matches('^([^/]*[.])?kubernetes[.]io/') && !k.startsWith('requests.'))",
        "kubernetes.io resource names other than cpu, memory, ephemeral-storage, and"
        " requests.* are reserved",
    ),
    cel(
        "self.all(k, !k.contains('/') || quantity(string(self[k])).isInteger())",
        "an extended resource (domain/name) must be a whole number",
    ),
)


class StrategyRef(ApiModel):
    """A RolloutStrategy in the same namespace."""

    name: KubeName
    """Name of the RolloutStrategy."""


class Autoscaling(ApiModel):
    """A HorizontalPodAutoscaler for the stable pods, scaling on CPU."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.minReplicas <= self.maxReplicas",
                "autoscaling minReplicas must not exceed maxReplicas",
            )
        )
    )

    min_replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    """Fewest stable pods."""
    max_replicas: int = Field(ge=1, le=MAX_REPLICAS)
    """Most stable pods."""
    target_cpu_utilization_percentage: int = Field(
        default=80, ge=1, le=100, alias="targetCPUUtilizationPercentage"
    )
    """Average CPU use, in percent of the request, that the HPA aims for."""
    scale_down_stabilization_seconds: int | None = Field(default=None, ge=0, le=3600)
    """How long load must stay low before the HPA removes pods; unset, Kubernetes' 300."""

    @model_validator(mode="after")
    def _range(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling minReplicas must not exceed maxReplicas")
        return self


def _quantity(value: str) -> str:
    return f"quantity(string({value}))"


class Resources(ApiModel):
    """Compute resources of each serving container, as in a Pod spec."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.requests) || !has(self.limits) || self.requests.all(k,"
                f" !(k in self.limits) || {_quantity('self.requests[k]')}"
                f".compareTo({_quantity('self.limits[k]')}) <= 0)",
                "a request must not exceed the limit of the same resource",
                fieldPath=".requests",
            ),
            cel(
                "!has(self.requests) || self.requests.all(k, !k.contains('/')"
                " || has(self.limits) && k in self.limits"
                f" && {_quantity('self.requests[k]')}"
                f".compareTo({_quantity('self.limits[k]')}) == 0)",
                "an extended resource (domain/name) needs a limit, and its request must equal it",
                fieldPath=".requests",
            ),
        )
    )

    requests: ResourceList | None = Field(
        default=None, max_length=16, json_schema_extra=_RESOURCE_LIST_RULES
    )
    """Reserved per container, e.g. cpu: 500m, memory: 512Mi; defaults to 100m CPU and 256Mi."""
    limits: ResourceList | None = Field(
        default=None, max_length=16, json_schema_extra=_RESOURCE_LIST_RULES
    )
    """Upper bounds per container."""

    @model_validator(mode="after")
    def _pod_rules(self) -> Resources:
        requests, limits = self.requests or {}, self.limits or {}
        for name, value in [*requests.items(), *limits.items()]:
            if _RESERVED_DOMAIN.search(name):
                raise ValueError(
                    f"resource {name}: kubernetes.io names other than"
                    f" {', '.join(NATIVE_RESOURCES)} and requests.* are reserved"
                )
            if "/" in name and quantity_value(value) != quantity_value(value).to_integral_value():
                raise ValueError(f"extended resource {name} must be a whole number")
        for name, value in requests.items():
            if name in limits and quantity_value(value) > quantity_value(limits[name]):
                raise ValueError("a request must not exceed the limit of the same resource")
            if "/" in name and (
                name not in limits or quantity_value(value) != quantity_value(limits[name])
            ):
                raise ValueError(
                    "an extended resource (domain/name) needs a limit, and its request must"
                    " equal it"
                )
        return self


# The Gateway API's own patterns (gateway.networking.k8s.io HTTPRoute, standard channel).
GATEWAY_HOSTNAME_PATTERN = (
    r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
GATEWAY_NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class ParentRef(ApiModel):
    """A Gateway (or listener of one) the HTTPRoute attaches to."""

    name: KubeName
    """Name of the Gateway."""
    namespace: (
        Annotated[
            str, StringConstraints(min_length=1, max_length=63, pattern=GATEWAY_NAMESPACE_PATTERN)
        ]
        | None
    ) = None
    """Namespace of the Gateway; the ModelDeployment's when absent."""
    section_name: (
        Annotated[
            str, StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
        ]
        | None
    ) = None
    """A listener of the Gateway."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """A listener port of the Gateway."""


class GatewayAPI(ApiModel):
    """Settings of the HTTPRoute that splits traffic with exact weights."""

    parent_refs: list[ParentRef] = Field(min_length=1, max_length=32)
    """Gateways (or their listeners) the HTTPRoute attaches to."""
    hostnames: (
        list[
            Annotated[
                str,
                StringConstraints(min_length=1, max_length=253, pattern=GATEWAY_HOSTNAME_PATTERN),
            ]
        ]
        | None
    ) = Field(default=None, max_length=16)
    """Host names the route answers (`*.example.com` allowed, IP addresses not); all of the
    Gateway's when absent."""


class Traffic(ApiModel):
    """How weights become reality."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.gatewayAPI) == (self.router == 'gatewayAPI')",
                "set traffic.gatewayAPI exactly when traffic.router is gatewayAPI",
            )
        )
    )

    router: Literal["kubernetes", "gatewayAPI"] = "kubernetes"
    """kubernetes: one Service, weight approximated by the replica ratio.
    gatewayAPI: an HTTPRoute with exact weights."""
    gateway_api: GatewayAPI | None = Field(default=None, alias="gatewayAPI")

    @model_validator(mode="after")
    def _router_settings(self) -> Traffic:
        if (self.gateway_api is not None) != (self.router == "gatewayAPI"):
            raise ValueError("set traffic.gatewayAPI exactly when traffic.router is gatewayAPI")
        return self


class Serving(ApiModel):
    """Knobs of the model server."""

    workers: int = Field(default=1, ge=1, le=64)
    """Server processes per pod."""
    max_batch_size: int = Field(default=64, ge=1, le=4096)
    """Most requests merged into one prediction call; 1 disables batching."""
    max_batch_wait_ms: int = Field(default=0, ge=0, le=10000)
    """How long a batch may wait to fill up; 0 merges only requests already queued."""
    max_queue_ms: int | None = Field(default=None, ge=0, le=60000)
    """Queueing budget: a request that would wait longer is refused with 503 and Retry-After
    (0 queues everything); unset, the server's default of 50 ms."""
    image: Image | None = None
    """Serving image for every version of this deployment; overrides the ModelVersion's."""


class Shadow(ApiModel):
    """Shadow (`mirror`) steps: stable pods copy requests to the canary and compare answers."""

    examples: bool = True
    """Keep the last few disagreeing rows (inputs and both answers) in the stable pods'
    memory, for `coalmine report`; false keeps no inputs anywhere."""


_DEFAULT_TRAFFIC = Traffic().to_json()
_DEFAULT_SHADOW = Shadow().to_json()
_DEFAULT_SERVING = Serving().to_json()


class ModelDeploymentSpec(ApiModel):
    """Which ModelVersion serves, and how a change of version is rolled out."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.strategyRef) != has(self.strategy)",
                "set exactly one of strategyRef or strategy",
            ),
            cel(
                "!(has(self.replicas) && has(self.autoscaling))",
                "set replicas or autoscaling, not both",
            ),
        )
    )

    model_version: ModelVersionName
    """Name of the ModelVersion to serve; changing it starts a rollout."""
    strategy_ref: StrategyRef | None = None
    strategy: RolloutStrategySpec | None = None
    """An inline rollout strategy, instead of strategyRef."""
    replicas: int | None = Field(default=None, ge=0, le=MAX_REPLICAS)
    """Stable pods when autoscaling is not set (default 1)."""
    autoscaling: Autoscaling | None = None
    resources: Resources | None = None
    # Full defaults: the API server checks a default against CEL before nested defaulting.
    traffic: Traffic = Field(
        default_factory=Traffic, json_schema_extra={"default": _DEFAULT_TRAFFIC}
    )
    serving: Serving = Field(
        default_factory=Serving, json_schema_extra={"default": _DEFAULT_SERVING}
    )
    shadow: Shadow = Field(default_factory=Shadow, json_schema_extra={"default": _DEFAULT_SHADOW})
    revision_history_limit: int = Field(default=10, ge=0, le=100)
    """Entries kept in status.history."""
    monitoring: Monitoring | None = None
    """Checks that keep watching every serving variant after it ships (docs/monitoring.md);
    changing them never starts a rollout."""

    @model_validator(mode="after")
    def _exclusive_choices(self) -> ModelDeploymentSpec:
        if (self.strategy_ref is None) == (self.strategy is None):
            raise ValueError("set exactly one of strategyRef or strategy")
        if self.replicas is not None and self.autoscaling is not None:
            raise ValueError("set replicas or autoscaling, not both")
        return self

    @property
    def stable_replicas(self) -> int | None:
        """Replicas of the stable Deployment; None when an HPA owns the count."""
        if self.autoscaling is not None:
            return None
        return DEFAULT_REPLICAS if self.replicas is None else self.replicas


Phase = Literal["Pending", "Progressing", "Paused", "Healthy", "Degraded", "RolledBack"]
Outcome = Literal["Successful", "Failed", "Inconclusive", "Error"]
Revision = Annotated[int, Field(ge=1)]


Change = Literal["modelVersion", "artifact", "resources", "serving", "image", "template"]
"""What made a revision new: another ModelVersion, the same name re-created with another
artifact, the pods' resources, the server's knobs, its image, or the operator's template."""
TemplateHash = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Pin(ApiModel):
    """What one revision serves, fixed when the revision was made: the verified artifact and
    everything else that shapes its pods. A variant's Deployment is rebuilt from its pin, never
    from the live spec or a ModelVersion re-created under the same name."""

    model_version_uid: Annotated[str, StringConstraints(max_length=128)]
    """uid of the ModelVersion that was validated; a re-created one is another revision."""
    sha256: Annotated[str, StringConstraints(max_length=64)]
    """The validated artifact's digest, which the pods verify before loading."""
    image: Annotated[str, StringConstraints(max_length=512)]
    """The serving image, resolved from spec.serving.image, the ModelVersion, or the default."""
    resources: Resources | None = None
    """spec.resources when the revision was made."""
    serving: Serving
    """spec.serving when the revision was made."""
    template_hash: TemplateHash
    """Hash of the pod template these render to; a Deployment is only re-applied while its
    pin still renders to it (a ModelVersion gone or an operator whose template changed leave
    the running pods as they are)."""


class VariantStatus(ApiModel):
    """What one variant (stable or canary) runs and how much traffic it gets."""

    model_version: KubeName
    version: str
    """The ModelVersion's spec.version."""
    revision: Revision
    """Rollout revision; increases by one for every change of what serves."""
    pin: Pin | None = None
    """What this revision serves (absent only in statuses written by operators before 0.2)."""
    changes: list[Change] = Field(default_factory=list, max_length=6)
    """What differs from the revision that served before it."""
    weight: Percent
    """Percent of client requests this variant was asked to serve."""
    traffic_share: Percent | None = None
    """Percent of client requests it really gets: with the kubernetes router its share of the
    pods, which can differ from `weight`."""
    mirror: Percent | None = None
    """Percent of requests copied to this variant as shadow traffic (canary only)."""
    replicas: Counter | None = None
    """Pods its Deployment wants now: under an HPA, the count the HPA set."""
    ready_replicas: Counter | None = None
    approval: Approval | None = None
    """The approval its ModelVersion carried while it rolled out (kept once promoted)."""


class MetricResult(ApiModel):
    """One metric of one measurement."""

    name: str
    outcome: Outcome
    value: float | None = None
    """Canary figure; absent when it could not be measured."""
    stable_value: float | None = None
    """The stable figure, for comparison."""
    sample_count: Counter | None = None
    message: Message | None = None


class AnalysisResult(ApiModel):
    """The latest measurement, kept for `kubectl describe` and `coalmine status`."""

    revision: Revision
    step_index: Counter
    outcome: Outcome
    time: AwareDatetime
    metrics: list[MetricResult] = Field(default_factory=list, max_length=16)
    message: Message | None = None


class AnalysisRun(ApiModel):
    """Counters of the analysis step in progress, so a restarted operator resumes it."""

    step_index: Counter
    started_at: AwareDatetime
    last_measured_at: AwareDatetime | None = None
    progressed_at: AwareDatetime | None = None
    """When the last conclusive (Successful or Failed) measurement was taken: a step with no
    conclusive one within the progress deadline (at least two intervals) rolls back."""
    measurements: Counter = 0
    successes: Counter = 0
    failures: Counter = 0
    inconclusive: Counter = 0
    errors: Counter = 0
    canary_snapshot: VariantCounters | None = None
    """Canary counters at the last measurement: where the next window starts."""
    stable_snapshot: VariantCounters | None = None
    """Stable counters at the last measurement."""


class HistoryEntry(ApiModel):
    """How one revision's rollout ended."""

    revision: Revision
    model_version: KubeName
    version: str
    outcome: Literal["Promoted", "RolledBack", "Aborted", "Superseded"]
    reason: Message | None = None
    time: AwareDatetime
    pin: Pin | None = None
    """What the revision served; `undo` serves it again."""
    changes: list[Change] = Field(default_factory=list, max_length=6)
    approval: Approval | None = None
    """Who approved the version, as its rollout saw it."""
    commands: list[CommandRecord] = Field(default_factory=list, max_length=MAX_COMMAND_RECORDS)
    """The commands acted on since the entry before: who promoted, aborted, retried, undid."""
    analysis: AnalysisResult | None = None
    """The revision's last measurement: the verdict of each metric with its figures."""


RECORD_POINTS = 120
"""Most points kept in status.rolloutRecord; the oldest go first."""


class PointMetric(ApiModel):
    """One metric of a judged measurement, as drawn by `coalmine report`."""

    canary: float | None = None
    """The canary figure (for predictionShift: the shift between canary and stable)."""
    stable: float | None = None
    outcome: Outcome
    kind: str | None = None
    """What is measured: the builtin metric (errorRate, latencyP99, ...) or prometheus."""
    max: float | None = None
    """Highest passing value, when the threshold has one."""
    min: float | None = None
    """Lowest passing value, when the threshold has one."""


class RecordPoint(ApiModel):
    """The rollout at one moment: a weight change, a judged measurement, the end."""

    time: AwareDatetime
    step_index: Counter | None = None
    canary_weight: Percent
    """Percent of client requests the new version serves (100 once promoted, 0 after a
    rollback)."""
    phase: Phase
    outcome: (
        Literal[
            "Successful",
            "Failed",
            "Inconclusive",
            "Error",
            "Promoted",
            "RolledBack",
            "Aborted",
            "Superseded",
        ]
        | None
    ) = None
    """The measurement's verdict, or how the rollout ended."""
    metrics: dict[Annotated[str, StringConstraints(max_length=253)], PointMetric] | None = Field(
        default=None, max_length=16
    )
    message: Message | None = None
    """Why it ended (rollback reason), on the last point."""


class RolloutRecord(ApiModel):
    """The story of the current or last rollout, kept so a report can be drawn afterwards."""

    revision: Revision
    model_version: KubeName
    version: str
    from_version: str | None = None
    """The stable version when the rollout started."""
    started_at: AwareDatetime
    points: list[RecordPoint] = Field(default_factory=list, max_length=RECORD_POINTS)
    """The newest points, oldest first."""


class ModelDeploymentStatus(ApiModel):
    """Observed state and rollout bookkeeping; all rollout state lives here."""

    observed_generation: int | None = Field(default=None, ge=0)
    phase: Phase = "Pending"
    message: Message | None = None
    """Human summary of the phase, e.g. why it rolled back."""
    url: str | None = None
    """In-cluster URL of the stable endpoint."""
    router: Literal["kubernetes", "gatewayAPI"] | None = None
    """The traffic router last applied; switching away from gatewayAPI deletes the route."""
    autoscaler: KubeName | None = None
    """The HorizontalPodAutoscaler last applied; removing spec.autoscaling deletes it."""
    pods: Annotated[str, StringConstraints(max_length=64)] | None = None
    """Ready/desired pods of stable, then of the canary while it has any (`3/4 + 1/1`)."""
    stable: VariantStatus | None = None
    canary: VariantStatus | None = None
    current_step_index: Counter | None = None
    """Index of the step being executed; equal to the step count when all are done."""
    rollout_started_at: AwareDatetime | None = None
    """When the canary was created; the progress deadline counts from here."""
    step_started_at: AwareDatetime | None = None
    """When the current step began; the wait for the canary's pods counts from here."""
    step_ready_at: AwareDatetime | None = None
    """When the canary first ran every pod the current step's weight asks, all ready; a
    pause or an analysis starts then, and timed pauses count from here."""
    analysis_run: AnalysisRun | None = None
    last_analysis: AnalysisResult | None = None
    latest_revision: Counter = 0
    """Highest revision number handed out so far."""
    aborted_revision: Revision | None = None
    """A revision rolled back or aborted; not retried until the spec changes or `retry`."""
    aborted_model_version: KubeName | None = None
    """The ModelVersion of abortedRevision."""
    aborted_template_hash: TemplateHash | None = None
    """The pin of abortedRevision: while the spec asks for exactly it, nothing starts."""
    canary_scale_down_at: AwareDatetime | None = None
    """When the canary pods of a finished rollout may go."""
    stable_floor: Counter | None = None
    """Stable pods the HPA keeps at least, until stableFloorUntil: the pods that served as
    the last rollout ended. The HPA's scale-down window remembers readings taken while the
    canary shared the load (or, during a promotion, while stable sat idle); released at once,
    it would scale stable in just as every client comes back to it."""
    stable_floor_until: AwareDatetime | None = None
    """When stableFloor ends: the rollout's end plus the HPA's scale-down window."""
    handled_commands: dict[Annotated[str, StringConstraints(max_length=63)], str] = Field(
        default_factory=dict, max_length=8
    )
    """Last token of each CLI command annotation the operator acted on."""
    commands: list[CommandRecord] = Field(default_factory=list, max_length=MAX_COMMAND_RECORDS)
    """Commands acted on since the last history entry, which the next entry takes over."""
    history: list[HistoryEntry] = Field(default_factory=list, max_length=100)
    rollout_record: RolloutRecord | None = None
    """Weights, verdicts and the end of the current or last rollout (`coalmine report`)."""
    monitoring: MonitoringStatus | None = None
    """Day-2 checks: their states and where the next window starts."""
    conditions: Conditions


class ModelDeployment(ApiModel):
    """A served model with progressive rollouts."""

    model_config = ConfigDict(extra="ignore")

    metadata: ObjectMeta
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus | None = None
