"""A tiny simulated cluster for the state machine: Deployments follow the last intent."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from coalmine.analysis.verdict import Measurement
from coalmine.api.counters import VariantCounters
from coalmine.api.deployment import (
    MetricResult,
    ModelDeployment,
    ModelDeploymentStatus,
    Outcome,
    Pin,
)
from coalmine.api.governance import APPROVED_BY_ANNOTATION, APPROVED_GROUPS_ANNOTATION
from coalmine.api.modelversion import ModelVersion
from coalmine.api.strategy import RolloutStrategySpec
from coalmine.resources.deployment import pin_for
from coalmine.rollout.observation import Observation, VariantObservation
from coalmine.rollout.plan import Plan, measurement_due, plan

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SHA = "0" * 64


def model_version(
    name: str,
    *,
    phase: str = "Validated",
    approved: bool | str = False,
    groups: str = "",
    message: str | None = None,
    uid: str | None = None,
    sha256: str = SHA,
) -> ModelVersion:
    """A ModelVersion; `approved` is True (by alice) or the approver's name."""
    by = "alice" if approved is True else approved or ""
    annotations = {APPROVED_BY_ANNOTATION: by} if by else {}
    if groups:
        annotations[APPROVED_GROUPS_ANNOTATION] = groups
    return ModelVersion.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": "ml",
                "uid": uid or f"uid-{name}",
                "annotations": annotations,
            },
            "spec": {
                "model": "iris",
                "version": name.removeprefix("iris-"),
                "uri": f"s3://models/{name}.skops",
                "sha256": sha256,
                "format": "skops",
            },
            "status": {"phase": phase, "message": message},
        }
    )


def strategy(*steps: dict[str, Any], **settings: Any) -> RolloutStrategySpec:
    return RolloutStrategySpec.model_validate({"steps": list(steps), **settings})


def analysis(count: int = 2, failure_limit: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "analysis": {
            "interval": "10s",
            "count": count,
            "failureLimit": failure_limit,
            "metrics": [
                {
                    "name": "errorRate",
                    "provider": "builtin",
                    "builtin": {"metric": "errorRate"},
                    "threshold": {"max": 0.05},
                }
            ],
            **extra,
        }
    }


def deployment(
    target: str,
    status: ModelDeploymentStatus | None = None,
    *,
    generation: int = 1,
    history_limit: int = 10,
    annotations: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
) -> ModelDeployment:
    md = ModelDeployment.model_validate(
        {
            "metadata": {
                "name": "iris",
                "namespace": "ml",
                "generation": generation,
                "annotations": annotations or {},
            },
            "spec": {
                "modelVersion": target,
                "strategyRef": {"name": "canary"},
                "revisionHistoryLimit": history_limit,
                **(spec or {}),
            },
        }
    )
    md.status = status
    return md


def pinned_hash(name: str) -> str:
    """The template hash of a Sim deployment serving `model_version(name)`."""
    return pin_for(deployment(name), model_version(name)).template_hash


def running(
    name: str,
    *,
    ready: bool = True,
    replicas: int = 1,
    restarts: int = 0,
    crash: bool = False,
    message: str | None = None,
    template_hash: str | None = None,
) -> VariantObservation:
    """A Deployment running `name` (by default as the Sim pins it)."""
    return VariantObservation(
        model_version=name,
        template_hash=pinned_hash(name) if template_hash is None else template_hash,
        replicas=replicas,
        ready_replicas=replicas if ready else 0,
        rolled_out=ready,
        restarts=restarts,
        crash_looping=crash,
        failure_message=message,
    )


def measurement(outcome: Outcome, now: datetime, *, baseline: bool = False) -> Measurement:
    value = {"Failed": 0.31, "Successful": 0.01}.get(outcome)
    message = {
        "Failed": "errorRate 0.31 > max 0.05 (canary), 0.00 stable",
        "Successful": "errorRate 0.01 within max 0.05",
        "Inconclusive": "too little traffic: 3 samples < 10",
        "Error": "query failed: timeout",
    }[outcome]
    metrics = (
        []
        if baseline
        else [MetricResult(name="errorRate", outcome=outcome, value=value, message=message)]
    )
    snapshot = VariantCounters(pods=1, requests=(now - T0).total_seconds())
    return Measurement(outcome, metrics, now, snapshot, snapshot, baseline=baseline)


@dataclass
class Sim:
    """One ModelDeployment in a world whose Deployments converge on the intent at once,
    unless told otherwise."""

    strategy: RolloutStrategySpec | None
    versions: dict[str, ModelVersion]
    target: str
    now: datetime = T0
    status: ModelDeploymentStatus | None = None
    generation: int = 1
    commands: dict[str, str] = field(default_factory=dict)
    canary_ready: bool = True
    canary_restarts: int = 0
    canary_crash: bool = False
    stable_on: tuple[str, str] | None = None
    """(ModelVersion, template hash) the stable Deployment runs."""
    canary_on: tuple[str, str] | None = None
    canary_pods: tuple[int, int] | None = None
    """(desired, ready) pods of the canary Deployment, when not one ready pod (or none)."""
    stable_pods: int = 1
    """Pods of the stable Deployment, all ready (under an HPA: the count it set)."""
    watching_since: datetime | None = None
    """When the operator began to act (its lease, its start); None: always could."""
    plans: list[Plan] = field(default_factory=list)
    history_limit: int = 10
    spec: dict[str, Any] = field(default_factory=dict)
    """More ModelDeployment spec (resources, serving, replicas ...)."""

    @property
    def md(self) -> ModelDeployment:
        return self.deployment(self.status)

    def deployment(self, status: ModelDeploymentStatus | None) -> ModelDeployment:
        return deployment(
            self.target,
            status,
            generation=self.generation,
            history_limit=self.history_limit,
            spec=self.spec,
        )

    def observe(self, outcome: Outcome | None = None) -> Observation:
        md = self.md
        due = measurement_due(md, self.strategy, self.now)
        m = None
        if due is not None:
            run = md.status.analysis_run if md.status else None
            baseline = run is not None and run.canary_snapshot is None
            m = measurement(outcome or "Successful", self.now, baseline=baseline)
        target = self.versions.get(self.target)
        stable = None
        if self.stable_on:
            stable = running(
                self.stable_on[0], template_hash=self.stable_on[1], replicas=self.stable_pods
            )
        canary = None
        if self.canary_on:
            canary = running(
                self.canary_on[0],
                template_hash=self.canary_on[1],
                ready=self.canary_ready,
                restarts=self.canary_restarts,
                crash=self.canary_crash,
            )
            if self.canary_pods is not None:
                desired, ready = self.canary_pods
                canary = replace(
                    canary, replicas=desired, ready_replicas=ready, rolled_out=ready == desired
                )
        return Observation(
            now=self.now,
            target=target,
            target_valid=bool(target and target.status and target.status.phase == "Validated"),
            strategy=self.strategy,
            stable=stable,
            canary=canary,
            measurement=m,
            commands=dict(self.commands),
            model_versions=dict(self.versions),
            watching_since=self.watching_since,
        )

    def step(self, seconds: float = 0, outcome: Outcome | None = None) -> Plan:
        """Advance the clock, reconcile once, check the fixed point, apply the plan."""
        self.now += timedelta(seconds=seconds)
        obs = self.observe(outcome)
        result = plan(self.md, obs)
        again = plan(self.deployment(result.status), obs)
        assert again.events == (), f"re-plan emitted {again.events}"
        assert again.status == result.status, "re-plan changed the status"
        assert again.intent == result.intent
        self.status = result.status
        self.stable_on = _runs(result.intent.stable_model_version, result.intent.stable_pin)
        self.canary_on = _runs(result.intent.canary_model_version, result.intent.canary_pin)
        self.plans.append(result)
        return result

    def reasons(self) -> list[str]:
        return [e.reason for p in self.plans for e in p.events]

    def until(self, predicate: Any, seconds: float = 5, limit: int = 200, **kw: Any) -> Plan:
        for _ in range(limit):
            result = self.step(seconds, **kw)
            if predicate(result):
                return result
        raise AssertionError(f"never reached; last status {self.status}")


def _runs(name: str | None, pin: Pin | None) -> tuple[str, str] | None:
    if name is None:
        return None
    assert pin is not None, "every revision the Sim makes is pinned"
    return name, pin.template_hash


def replace_obs(obs: Observation, **changes: Any) -> Observation:
    return replace(obs, **changes)
