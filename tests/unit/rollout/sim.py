"""A tiny simulated cluster for the state machine: Deployments follow the last intent."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from coalmine.analysis.verdict import Measurement
from coalmine.api.deployment import (
    MetricResult,
    ModelDeployment,
    ModelDeploymentStatus,
    Outcome,
    VariantCounters,
)
from coalmine.api.modelversion import APPROVED_BY_ANNOTATION, ModelVersion
from coalmine.api.strategy import RolloutStrategySpec
from coalmine.rollout.observation import Observation, VariantObservation
from coalmine.rollout.plan import Plan, measurement_due, plan

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SHA = "0" * 64


def model_version(
    name: str, *, phase: str = "Validated", approved: bool = False, message: str | None = None
) -> ModelVersion:
    annotations = {APPROVED_BY_ANNOTATION: "alice"} if approved else {}
    return ModelVersion.model_validate(
        {
            "metadata": {"name": name, "namespace": "ml", "annotations": annotations},
            "spec": {
                "model": "iris",
                "version": name.removeprefix("iris-"),
                "uri": f"s3://models/{name}.skops",
                "sha256": SHA,
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
            },
        }
    )
    md.status = status
    return md


def running(
    name: str,
    *,
    ready: bool = True,
    replicas: int = 1,
    restarts: int = 0,
    crash: bool = False,
    message: str | None = None,
) -> VariantObservation:
    return VariantObservation(
        model_version=name,
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
    stable_on: str | None = None
    canary_on: str | None = None
    plans: list[Plan] = field(default_factory=list)
    history_limit: int = 10

    @property
    def md(self) -> ModelDeployment:
        return deployment(
            self.target, self.status, generation=self.generation, history_limit=self.history_limit
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
        stable = running(self.stable_on) if self.stable_on else None
        canary = None
        if self.canary_on:
            canary = running(
                self.canary_on,
                ready=self.canary_ready,
                restarts=self.canary_restarts,
                crash=self.canary_crash,
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
        )

    def step(self, seconds: float = 0, outcome: Outcome | None = None) -> Plan:
        """Advance the clock, reconcile once, check the fixed point, apply the plan."""
        self.now += timedelta(seconds=seconds)
        obs = self.observe(outcome)
        result = plan(self.md, obs)
        again = plan(
            deployment(
                self.target,
                result.status,
                generation=self.generation,
                history_limit=self.history_limit,
            ),
            obs,
        )
        assert again.events == (), f"re-plan emitted {again.events}"
        assert again.status == result.status, "re-plan changed the status"
        assert again.intent == result.intent
        self.status = result.status
        self.stable_on = result.intent.stable_model_version
        self.canary_on = result.intent.canary_model_version
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


def replace_obs(obs: Observation, **changes: Any) -> Observation:
    return replace(obs, **changes)
