"""The `gatewayAPI` router: an HTTPRoute with exact weights.

Any Gateway API implementation splits requests by the route's backend weights,
whatever the pod counts, so the canary's share is its weight exactly. In mirror
steps the stable pods, not the route, copy requests to the canary Service
(resources/mirror.py; see resources/httproute.py for why). The canary is sized
for what it gets: its weight or mirror share, whichever is larger, of the
stable pod count, rounded up. Clients reach the model through the Gateway; the
client Service stays for in-cluster callers that bypass it and serves stable
until promotion, so those callers never see an unproven version.
"""

from __future__ import annotations

import math

from coalmine.api.base import ConditionStatus
from coalmine.api.deployment import ModelDeployment
from coalmine.resources import Manifest
from coalmine.resources.httproute import build_httproute
from coalmine.resources.naming import service_name
from coalmine.rollout import reasons
from coalmine.traffic.common import TrafficPlan, base_replicas, services
from coalmine.traffic.router import ObjectRef, Routed


def canary_size(md: ModelDeployment, share: int, stable_pods: int | None) -> int:
    """Canary pods for `share` percent (its weight or mirror share) beside `stable_pods`."""
    base = base_replicas(md, stable_pods)
    return max(1, math.ceil(base * share / 100)) if base else 0


def route(
    md: ModelDeployment,
    canary_running: bool,
    weight: int,
    mirror: int,
    stable_pods: int | None,
    stable_floor: int | None = None,
) -> TrafficPlan:
    """Objects and replica counts for a canary at `weight` percent, sized also for the stable
    pods' copies of `mirror` percent of requests, beside `stable_pods` (the stable
    Deployment's current count; None before it exists), with the HPA's floor after a rollout
    held at `stable_floor` (Intent.stable_floor)."""
    base = base_replicas(md, stable_pods)
    canary = canary_size(md, max(weight, mirror), stable_pods) if canary_running else 0
    share = weight if canary_running else 0
    if share >= 100:
        objects = services(md, "canary", canary, stable_floor)
    else:
        objects = services(md, "stable", base if share > 0 else None, stable_floor)
    objects.append(build_httproute(md, share if canary_running else None))
    return TrafficPlan(md.spec.stable_replicas, canary, tuple(objects), share)


def route_acceptance(httproute: Manifest) -> tuple[ConditionStatus, str, str]:
    """The TrafficRouted condition (status, reason, message) from a route's status.

    Each Gateway implementation reports per parent; the route is routed only
    when every parent has accepted it and resolved its backends.
    """
    parents = (httproute.get("status") or {}).get("parents") or []
    if not parents:
        return "Unknown", reasons.AWAITING_GATEWAY, "no Gateway has reported on the route yet"
    problems, accepted = [], []
    for parent in parents:
        name = parent.get("parentRef", {}).get("name", "?")
        conditions = {c.get("type"): c for c in parent.get("conditions") or []}
        for type_ in ("Accepted", "ResolvedRefs"):
            c = conditions.get(type_)
            if c is not None and c.get("status") == "False":
                problems.append(f"{name}: {type_} False ({c.get('reason')}: {c.get('message')})")
        if conditions.get("Accepted", {}).get("status") == "True":
            accepted.append(name)
    if problems:
        return "False", reasons.ROUTE_NOT_ACCEPTED, "; ".join(problems)
    if not accepted:
        return "Unknown", reasons.AWAITING_GATEWAY, "no Gateway has accepted the route yet"
    return "True", reasons.ROUTE_ACCEPTED, f"accepted by {', '.join(sorted(set(accepted)))}"


MISSING_CRDS: Routed = (
    "False",
    reasons.GATEWAY_API_MISSING,
    "the API server does not serve HTTPRoutes: install the Gateway API CRDs",
)


class GatewayAPIRouter:
    """The `gatewayAPI` router as a `Router`: its HTTPRoute, and whether Gateways accept it."""

    name = "gatewayAPI"

    def route(
        self,
        md: ModelDeployment,
        canary_running: bool,
        weight: int,
        mirror: int,
        stable_pods: int | None,
        canary_ready: int,
        stable_floor: int | None,
    ) -> TrafficPlan:
        return route(md, canary_running, weight, mirror, stable_pods, stable_floor)

    def canary_size(
        self, md: ModelDeployment, weight: int, stable_pods: int | None, mirror: int = 0
    ) -> int:
        return canary_size(md, max(weight, mirror), stable_pods)

    def owned(self, md: ModelDeployment) -> tuple[ObjectRef, ...]:
        return (("HTTPRoute", md.metadata.namespace or "default", service_name(md)),)

    def routed(self, applied: Manifest) -> Routed | None:
        return route_acceptance(applied) if applied.get("kind") == "HTTPRoute" else None

    def refused(self, obj: Manifest, status: int) -> Routed | None:
        """A cluster without the Gateway API CRDs refuses the route, not the rest: the
        Services and Deployments still go out and stable keeps serving."""
        return MISSING_CRDS if obj["kind"] == "HTTPRoute" and status == 404 else None
