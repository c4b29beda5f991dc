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

from coalmine.api.deployment import ModelDeployment
from coalmine.resources import Manifest
from coalmine.resources.httproute import build_httproute
from coalmine.traffic.common import TrafficPlan, base_replicas, services


def route(md: ModelDeployment, canary_running: bool, weight: int, mirror: int) -> TrafficPlan:
    """Objects and replica counts for a canary at `weight` percent, mirroring `mirror`."""
    base = base_replicas(md)
    canary = max(1, math.ceil(base * max(weight, mirror) / 100)) if canary_running and base else 0
    share = weight if canary_running else 0
    objects = services(md, "canary" if share >= 100 else "stable")
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
