"""The `gatewayAPI` router: an HTTPRoute with exact weights and request mirroring.

Any Gateway API implementation splits requests by the route's backend weights,
whatever the pod counts, so the canary's share is its weight exactly and the
canary is sized for the traffic it gets: its weight (or mirror share, whichever
is larger) of the stable pod count, rounded up. Clients reach the model through
the Gateway; the client Service stays for in-cluster callers that bypass it and
serves stable until promotion, so those callers never see an unproven version.

RequestMirror is an extended feature: an implementation without it may fail
the whole rule (Traefik answers 500), so mirroring is left out of the route
when a parent Gateway's class says it cannot mirror.
"""

from __future__ import annotations

import math

from coalmine.api.base import ConditionStatus
from coalmine.api.deployment import ModelDeployment
from coalmine.resources import Manifest
from coalmine.resources.httproute import build_httproute
from coalmine.resources.naming import service_name
from coalmine.rollout import reasons
from coalmine.rollout.decision import Event
from coalmine.traffic.common import TrafficPlan, base_replicas, services
from coalmine.traffic.router import ObjectRef, Routed


def canary_size(md: ModelDeployment, share: int, stable_pods: int | None) -> int:
    """Canary pods for `share` percent (its weight or mirror share) beside `stable_pods`."""
    base = base_replicas(md, stable_pods)
    return max(1, math.ceil(base * share / 100)) if base else 0


def route(
    md: ModelDeployment, canary_running: bool, weight: int, mirror: int, stable_pods: int | None
) -> TrafficPlan:
    """Objects and replica counts for a canary at `weight` percent, mirroring `mirror`, beside
    `stable_pods` (the stable Deployment's current count; None before it exists)."""
    base = base_replicas(md, stable_pods)
    canary = canary_size(md, max(weight, mirror), stable_pods) if canary_running else 0
    share = weight if canary_running else 0
    if share >= 100:
        objects = services(md, "canary", floor=canary)
    else:
        objects = services(md, "stable", floor=base if share > 0 else None)
    objects.append(build_httproute(md, share if canary_running else None, mirror))
    return TrafficPlan(md.spec.stable_replicas, canary, tuple(objects), share)


MIRROR_FEATURE = "HTTPRouteRequestMirror"


def lacks_feature(gateway_class: Manifest | None, feature: str) -> bool:
    """Whether a GatewayClass says its implementation lacks `feature`.

    Implementations list what they support in status.supportedFeatures (Gateway
    API v1.2+; names, or objects with a name). A class that lists nothing, or
    cannot be read, is given the benefit of the doubt.
    """
    listed = ((gateway_class or {}).get("status") or {}).get("supportedFeatures")
    if not listed:
        return False
    names = {f["name"] if isinstance(f, dict) else f for f in listed}
    return feature not in names


def allowed_mirror(
    wanted: int, previous: int | None, classes: dict[str, Manifest | None]
) -> tuple[int, list[Event]]:
    """The mirror share the route may carry, given each parent Gateway's class.

    When one cannot mirror, the share is 0 and a warning goes out once: when the
    mirror step starts (`previous`, the share in status before it, differs).
    """
    unable = [gateway for gateway, cls in classes.items() if lacks_feature(cls, MIRROR_FEATURE)]
    if not wanted or not unable:
        return wanted, []
    if previous == wanted:
        return 0, []
    message = (
        f"mirroring left out: the GatewayClass of {', '.join(unable)} does not support "
        f"{MIRROR_FEATURE}; the canary gets no shadow traffic"
    )
    return 0, [Event("Warning", reasons.MIRROR_UNSUPPORTED, message)]


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
    """The `gatewayAPI` router as a `Router`: its HTTPRoute, and the Gateways behind it."""

    name = "gatewayAPI"

    def route(
        self,
        md: ModelDeployment,
        canary_running: bool,
        weight: int,
        mirror: int,
        stable_pods: int | None,
        canary_ready: int,
    ) -> TrafficPlan:
        return route(md, canary_running, weight, mirror, stable_pods)

    def canary_size(
        self, md: ModelDeployment, weight: int, stable_pods: int | None, mirror: int = 0
    ) -> int:
        return canary_size(md, max(weight, mirror), stable_pods)

    def gateways(self, md: ModelDeployment) -> tuple[tuple[str, str], ...]:
        settings = md.spec.traffic.gateway_api
        own = md.metadata.namespace or "default"
        refs = settings.parent_refs if settings is not None else []
        return tuple((ref.namespace or own, ref.name) for ref in refs)

    def allowed_mirror(
        self, wanted: int, previous: int | None, classes: dict[str, Manifest | None]
    ) -> tuple[int, list[Event]]:
        return allowed_mirror(wanted, previous, classes)

    def owned(self, md: ModelDeployment) -> tuple[ObjectRef, ...]:
        return (("HTTPRoute", md.metadata.namespace or "default", service_name(md)),)

    def routed(self, applied: Manifest) -> Routed | None:
        return route_acceptance(applied) if applied.get("kind") == "HTTPRoute" else None

    def refused(self, obj: Manifest, status: int) -> Routed | None:
        """A cluster without the Gateway API CRDs refuses the route, not the rest: the
        Services and Deployments still go out and stable keeps serving."""
        return MISSING_CRDS if obj["kind"] == "HTTPRoute" and status == 404 else None
