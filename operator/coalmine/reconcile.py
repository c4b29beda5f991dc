"""One reconcile of a ModelDeployment or ModelVersion: observe, decide (pure), apply.

Everything here is glue: reads go through `coalmine.kube`, every decision is
made by `coalmine.rollout.plan` / `coalmine.validation`, and what they decide
is written back with server-side apply and one status write.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from coalmine.analysis import aggregate, measure, parse_metrics, previous_snapshots, window
from coalmine.analysis.prometheus_client import query_prometheus
from coalmine.analysis.queries import render_query
from coalmine.api.base import Condition
from coalmine.api.conditions import set_condition
from coalmine.api.counters import VariantCounters
from coalmine.api.deployment import (
    COMMAND_ANNOTATIONS,
    RECONCILING,
    STALLED,
    ModelDeployment,
    ModelDeploymentStatus,
    Pin,
)
from coalmine.api.modelversion import ModelVersion
from coalmine.api.strategy import Analysis, AnalysisMetric, RolloutStrategy, RolloutStrategySpec
from coalmine.kube.client import Kube
from coalmine.kube.events import post_event
from coalmine.kube.observe import is_ready, observe_variant, variant_pods
from coalmine.kube.scrape import scrape_pod
from coalmine.kube.webhook import send
from coalmine.metrics import record_decision, record_webhook
from coalmine.monitoring.checks import checks_for, monitoring_due
from coalmine.monitoring.decide import MonitoringScrape, VariantScrape
from coalmine.resources import Variant, build_deployment, service_url
from coalmine.resources.deployment import pin_for, renders
from coalmine.resources.mirror import build_mirror_config
from coalmine.resources.naming import deployment_name, hpa_name
from coalmine.resources.validation_job import build_validation_job, validation_job_name
from coalmine.rollout.commands import new_commands
from coalmine.rollout.draft import clip
from coalmine.rollout.observation import Observation, VariantObservation
from coalmine.rollout.plan import Measurement, Plan, measurement_due, monitored_version, plan
from coalmine.rollout.reasons import RECONCILE_ERROR, WEBHOOK_FAILED
from coalmine.traffic import ROUTERS, Router, TrafficPlan, router_for
from coalmine.traffic.router import ROUTED, Routed
from coalmine.validation import plan_validation

log = logging.getLogger("coalmine.reconcile")
ROUTE_RECHECK = 5.0
"""Seconds until a route no Gateway has reported on yet is read again."""
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _model_version(kube: Kube, namespace: str, name: str | None) -> ModelVersion | None:
    if not name:
        return None
    body = kube.get("ModelVersion", namespace, name)
    return ModelVersion.model_validate(body) if body else None


def _strategy(kube: Kube, md: ModelDeployment) -> RolloutStrategySpec | None:
    if md.spec.strategy is not None:
        return md.spec.strategy
    assert md.spec.strategy_ref is not None  # the CRD requires exactly one
    body = kube.get("RolloutStrategy", md.metadata.namespace, md.spec.strategy_ref.name)
    return RolloutStrategy.model_validate(body).spec if body else None


def _scrape(kube: Kube, md: ModelDeployment, variant: Variant) -> VariantCounters:
    """Sum the /metrics of the variant's ready pods."""
    texts = [scrape_pod(p) for p in variant_pods(kube, md, variant) if is_ready(p)]
    return aggregate([parse_metrics(t) for t in texts if t is not None])


def _prometheus_results(
    md: ModelDeployment, metrics: list[AnalysisMetric], interval: str
) -> dict[str, float | Exception]:
    """Each prometheus metric's query result, or the exception it raised (an Error outcome,
    never a crash)."""
    results: dict[str, float | Exception] = {}
    for metric in metrics:
        if metric.prometheus is None:
            continue
        try:
            query = render_query(metric.prometheus.query, md, interval=interval)
            results[metric.name] = query_prometheus(metric.prometheus.address, query)
        except Exception as exc:
            results[metric.name] = exc
    return results


def _monitor_scrape(
    kube: Kube,
    md: ModelDeployment,
    variants: dict[Variant, VariantObservation | None],
    versions: dict[str, ModelVersion],
) -> MonitoringScrape:
    """Scrape every variant that has pods serving, and run the prometheus checks."""
    seen = []
    for variant, obs in variants.items():
        mv = versions.get(obs.model_version) if obs is not None else None
        if obs is None or mv is None or obs.ready_replicas == 0:
            continue
        counters = _scrape(kube, md, variant)
        seen.append(VariantScrape(variant, mv.spec.version, obs.model_version, counters))
    monitoring = md.spec.monitoring
    if monitoring is None or not monitoring.checks:
        return MonitoringScrape(tuple(seen))  # the default checks are all builtin
    return MonitoringScrape(
        tuple(seen), _prometheus_results(md, list(monitoring.checks), monitoring.interval)
    )


def _measure(
    kube: Kube,
    md: ModelDeployment,
    analysis: Analysis,
    target: ModelVersion | None,
    now: datetime,
) -> Measurement:
    """Scrape both variants' ready pods and query Prometheus, then judge (pure)."""
    counters = [_scrape(kube, md, "canary"), _scrape(kube, md, "stable")]
    prev_canary, prev_stable = previous_snapshots(md)
    results = _prometheus_results(md, list(analysis.metrics), analysis.interval)
    return measure(
        analysis,
        window(prev_canary, counters[0]),
        window(prev_stable, counters[1]),
        results,
        now,
        canary_snapshot=counters[0],
        stable_snapshot=counters[1],
        reference=target.spec.reference if target is not None else None,
    )


def reconcile_deployment(
    kube: Kube,
    namespace: str,
    name: str,
    clock: Clock = utcnow,
    watching_since: datetime | None = None,
) -> float | None:
    """Bring one ModelDeployment one step closer to its spec; returns seconds until due again.

    Four stages: observe what is there, plan (pure: the next status, what should run, the
    events), apply what should run (traffic first), persist the status and the events.
    `watching_since` says since when this operator can act (Observation.watching_since)."""
    seen = observe(kube, namespace, name, clock(), watching_since)
    if seen is None:
        return None
    decision = plan(seen.md, seen.obs)
    record_decision(namespace, name, decision.status, decision.events, seen.obs.measurement)
    applied = apply(kube, seen, decision)
    persist(kube, seen, decision, applied)
    if applied.routed is not None and applied.routed[0] == "Unknown":
        # The route's status is only read when applied: look again once the Gateway had a moment.
        return min(decision.requeue_after or ROUTE_RECHECK, ROUTE_RECHECK)
    return decision.requeue_after


@dataclass(frozen=True)
class Seen:
    """What the observe stage read: the resource as it came and as the plan reads it."""

    body: dict[str, Any]
    md: ModelDeployment
    obs: Observation
    deployments: dict[Variant, dict[str, Any] | None]
    """Each variant's Deployment as read (None: none yet)."""


def observe(
    kube: Kube, namespace: str, name: str, now: datetime, watching_since: datetime | None
) -> Seen | None:
    """Read the ModelDeployment, its strategy, ModelVersions and variants, and measure when an
    analysis is due; None when it is gone or going."""
    body = kube.get("ModelDeployment", namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    md = ModelDeployment.model_validate(body)
    strategy = _strategy(kube, md)
    target = _model_version(kube, namespace, md.spec.model_version)
    stable_obs, stable_dep = observe_variant(kube, md, "stable")
    canary_obs, canary_dep = observe_variant(kube, md, "canary")
    due = measurement_due(md, strategy, now)
    measurement = _measure(kube, md, due, target, now) if due is not None else None
    annotations = md.metadata.annotations
    commands = {k: annotations[a] for k, a in COMMAND_ANNOTATIONS.items() if a in annotations}
    versions = _model_versions(kube, md, target, commands)
    obs = Observation(
        now=now,
        target=target,
        target_valid=bool(target and target.status and target.status.phase == "Validated"),
        strategy=strategy,
        stable=stable_obs,
        canary=canary_obs,
        measurement=measurement,
        commands=commands,
        model_versions=versions,
        watching_since=watching_since,
    )
    if obs.serving() and monitoring_due(md, checks_for(md, monitored_version(md, obs)), now):
        variants: dict[Variant, VariantObservation | None] = {
            "stable": stable_obs,
            "canary": canary_obs,
        }
        obs = replace(obs, monitoring=_monitor_scrape(kube, md, variants, versions))
    return Seen(body, md, obs, {"stable": stable_dep, "canary": canary_dep})


@dataclass(frozen=True)
class Applied:
    """What the apply stage did that status must tell."""

    traffic: TrafficPlan
    routed: Routed | None
    """The TrafficRouted condition, when the router reports one."""


def apply(kube: Kube, seen: Seen, decision: Plan) -> Applied:
    """Write what should run: traffic first, so that a rollback moves clients off the canary
    before it scales down and a canary has its pods before the Service sends it anyone."""
    md, obs, intent = seen.md, seen.obs, decision.intent
    namespace = md.metadata.namespace or "default"
    router = router_for(md)
    canary_running = intent.canary_model_version is not None and not intent.canary_replicas_zero
    traffic = router.route(
        md,
        canary_running=canary_running,
        weight=intent.canary_weight,
        mirror=intent.mirror,
        stable_pods=obs.stable.replicas if obs.stable is not None else None,
        canary_ready=obs.canary.ready_replicas if obs.canary is not None else 0,
        stable_floor=intent.stable_floor,
    )
    routed = _apply_traffic(kube, router, traffic.objects)
    # The stable pods copy shadow traffic whatever the router (resources/mirror.py).
    shadow = intent.mirror if canary_running else 0
    kube.apply(build_mirror_config(md, shadow, intent.canary_model_version))
    before = md.status.router if md.status is not None else None
    if before is not None and before != router.name and before in ROUTERS:
        for kind, ns, name in ROUTERS[before].owned(md):
            kube.delete(kind, ns or namespace, name)
    if md.spec.autoscaling is None and md.status is not None and md.status.autoscaler:
        kube.delete("HorizontalPodAutoscaler", namespace, md.status.autoscaler)
    versions, deployments = dict(obs.model_versions), seen.deployments
    stable = Serve(intent.stable_model_version, intent.stable_pin, traffic.stable_replicas)
    _apply_variant(kube, md, "stable", stable, versions, deployments["stable"])
    if intent.canary_model_version is not None:
        canary = Serve(intent.canary_model_version, intent.canary_pin, traffic.canary_replicas)
        _apply_variant(kube, md, "canary", canary, versions, deployments["canary"])
    elif deployments["canary"] is not None:
        # A finished canary's Deployment stays, at zero replicas, as it was.
        _apply_variant(kube, md, "canary", Serve(None, None, 0), versions, deployments["canary"])
    return Applied(traffic, routed)


def persist(kube: Kube, seen: Seen, decision: Plan, applied: Applied) -> None:
    """One status write, only when it changes anything, then the events."""
    md, now = seen.md, seen.obs.now
    conditions = [c for c in decision.status.conditions if c.type != ROUTED]
    if applied.routed is not None:
        conditions = set_condition(conditions, ROUTED, *applied.routed, now, md.metadata.generation)
    status = _with_shares(decision.status, applied.traffic.canary_share).model_copy(
        update={
            "url": service_url(md),
            "router": md.spec.traffic.router,
            "autoscaler": hpa_name(md) if md.spec.autoscaling is not None else None,
            "conditions": conditions,
        }
    )
    new_status = status.to_json()
    namespace, name = md.metadata.namespace or "default", md.metadata.name
    if new_status != (seen.body.get("status") or {}):
        kube.apply_status("ModelDeployment", namespace, name, new_status)
    for event in decision.events:
        post_event(
            kube, seen.body, type_=event.type, reason=event.reason, message=event.message, now=now
        )
    for notification in decision.notifications:
        problem = send(notification)
        record_webhook(namespace, name, problem)
        if problem is not None:
            text = f"webhook {notification.url} for {notification.body['check']}: {problem}"
            post_event(
                kube, seen.body, type_="Warning", reason=WEBHOOK_FAILED, message=text, now=now
            )


def _model_versions(
    kube: Kube, md: ModelDeployment, target: ModelVersion | None, commands: dict[str, str]
) -> dict[str, ModelVersion]:
    """The target and the ModelVersions the variants serve (for a pending `undo`, those of
    the history too), by name; a name left out does not exist."""
    found = {target.metadata.name: target} if target is not None else {}
    st = md.status
    if st is None:
        return found
    names = {v.model_version for v in (st.stable, st.canary) if v is not None}
    if "undo" in new_commands(st.handled_commands, commands):
        names |= {h.model_version for h in st.history}
    for name in sorted(names - found.keys()):
        mv = _model_version(kube, md.metadata.namespace or "default", name)
        if mv is not None:
            found[name] = mv
    return found


@dataclass(frozen=True)
class Serve:
    """One variant's Deployment as the plan wants it."""

    model_version: str | None
    pin: Pin | None
    replicas: int | None
    """None: an HPA owns the count."""


def _apply_variant(
    kube: Kube,
    md: ModelDeployment,
    variant: Variant,
    serve: Serve,
    versions: dict[str, ModelVersion],
    observed: dict[str, Any] | None,
) -> None:
    """Apply the variant's Deployment from its pin; when the pin cannot be rebuilt as it was
    (its ModelVersion deleted or re-created, or this operator renders another template), leave
    the running pods exactly as they are and only scale them."""
    mv = versions.get(serve.model_version or "")
    pin = serve.pin if serve.pin is not None or mv is None else pin_for(md, mv)
    if mv is not None and pin is not None and renders(md, mv, pin):
        kube.apply(build_deployment(md, mv, variant, serve.replicas, pin))
        return
    if observed is None or serve.replicas is None:
        return
    if observed.get("spec", {}).get("replicas") != serve.replicas:
        ns = md.metadata.namespace or "default"
        name = deployment_name(md, variant)
        kube.merge_patch("Deployment", ns, name, {"spec": {"replicas": serve.replicas}})


def _with_shares(status: ModelDeploymentStatus, canary_share: int) -> ModelDeploymentStatus:
    """The traffic each variant really gets, next to the weight it was asked for."""
    update: dict[str, Any] = {}
    if status.canary is not None:
        update["canary"] = status.canary.model_copy(update={"traffic_share": canary_share})
    if status.stable is not None:
        update["stable"] = status.stable.model_copy(update={"traffic_share": 100 - canary_share})
    return status.model_copy(update=update)


def _apply_traffic(
    kube: Kube, router: Router, objects: tuple[dict[str, Any], ...]
) -> Routed | None:
    """Apply the router's objects; the TrafficRouted condition when the router reports one.
    An object the router says may be refused (a route without its CRDs) does not stop the
    rest: the Services and Deployments still go out and stable keeps serving."""
    routed: Routed | None = None
    for obj in objects:
        try:
            applied = kube.apply(obj)
        except ApiException as exc:
            refused = router.refused(obj, int(exc.status or 0))
            if refused is None:
                raise
            log.warning("%s %s not applied: %s", obj["kind"], obj["metadata"]["name"], exc.reason)
            routed = refused
            continue
        routed = router.routed(applied) or routed
    return routed


def report_failure(
    kube: Kube, kind: str, namespace: str, name: str, error: Exception, clock: Clock = utcnow
) -> None:
    """A reconcile raised: say so on the object (Stalled with the error, a Warning Event once
    per distinct error), so a retried failure is never invisible."""
    body = kube.get(kind, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    now = clock()
    message = clip(f"reconcile failed (retried with backoff): {error_text(error)}")
    status = dict(body.get("status") or {})
    conditions = [Condition.model_validate(c) for c in status.get("conditions", [])]
    stalled = next((c for c in conditions if c.type == STALLED), None)
    if stalled is not None and (stalled.reason, stalled.message) == (RECONCILE_ERROR, message):
        return
    generation = body["metadata"].get("generation")
    conditions = set_condition(
        conditions, STALLED, "True", RECONCILE_ERROR, message, now, generation
    )
    conditions = set_condition(
        conditions, RECONCILING, "False", RECONCILE_ERROR, message, now, generation
    )
    status["conditions"] = [c.to_json() for c in conditions]
    kube.apply_status(kind, namespace, name, status)
    post_event(kube, body, type_="Warning", reason=RECONCILE_ERROR, message=message, now=now)


def error_text(error: Exception) -> str:
    """What went wrong, the same on every retry: the API server's own message for its errors
    (never the response headers, which differ each time), else the exception."""
    if isinstance(error, ApiException):
        try:
            message = json.loads(error.body or "{}").get("message")
        except (ValueError, AttributeError):
            message = None
        return f"{error.status} {error.reason}: {message or error.body or ''}".strip()
    return f"{type(error).__name__}: {error}"


def reconcile_model_version(
    kube: Kube, namespace: str, name: str, clock: Clock = utcnow
) -> float | None:
    """Check a ModelVersion's artifact once, with a Job running the serving image."""
    body = kube.get("ModelVersion", namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    mv = ModelVersion.model_validate(body)
    now = clock()
    job = kube.get("Job", namespace, validation_job_name(mv))
    reason = _job_failure_message(kube, namespace, job) if job else None
    decision = plan_validation(mv, job, reason, now)
    if decision.create_job:
        kube.apply(build_validation_job(mv))
    new_status = decision.status.to_json()
    if new_status != (body.get("status") or {}):
        kube.apply_status("ModelVersion", namespace, name, new_status)
    if decision.event is not None:
        type_, reason, message = decision.event
        post_event(kube, body, type_=type_, reason=reason, message=message, now=now)
    return None


def _job_failure_message(kube: Kube, namespace: str, job: dict[str, Any]) -> str | None:
    uid = job["metadata"].get("uid")
    for pod in kube.list("Pod", namespace, {"batch.kubernetes.io/controller-uid": uid}):
        for cs in pod.get("status", {}).get("containerStatuses", []) or []:
            terminated = cs.get("state", {}).get("terminated") or {}
            if terminated.get("exitCode", 0) != 0 and terminated.get("message"):
                return str(terminated["message"])
    return None
