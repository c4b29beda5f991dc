"""The `kubernetes` router: one Service, weights approximated by replica counts.

No extra components. The client-facing Service selects the stable pods only
at weight 0 and the canary pods only at weight 100, so those two ends are
exact and a rollback takes effect as fast as kube-proxy applies one Service
change. In between, both variants sit behind the Service and kube-proxy
spreads connections evenly over pods, so the canary's share is its share of
the ready pods: canary/(stable + canary), as `canary_share` says. In `mirror`
steps the stable pods copy requests to the canary Service themselves
(resources/mirror.py); the canary is sized for those copies too.
"""

from __future__ import annotations

import math

from coalmine.api.deployment import ModelDeployment
from coalmine.resources import Manifest
from coalmine.resources.naming import Variant
from coalmine.traffic.common import TrafficPlan, base_replicas, services
from coalmine.traffic.router import ObjectRef, Routed


def canary_replicas_for(stable: int, weight: int) -> int:
    """Fewest canary pods whose share of all pods comes closest to `weight`, at least one."""
    if weight <= 0 or stable <= 0:
        return 0
    if weight >= 100:
        return stable
    exact = stable * weight / (100 - weight)  # c / (s + c) == w / 100
    candidates = {max(1, math.floor(exact)), max(1, math.ceil(exact))}
    return min(candidates, key=lambda c: (abs(c / (stable + c) - weight / 100), c))


def canary_size(md: ModelDeployment, weight: int, stable_pods: int | None, mirror: int = 0) -> int:
    """Canary pods for `weight` percent beside `stable_pods`, and for the copies of `mirror`
    percent of requests; one while warming at 0."""
    base = base_replicas(md, stable_pods)
    return max(canary_replicas_for(base, weight), 1 if base > 0 else 0, mirror_size(base, mirror))


def mirror_size(stable: int, mirror: int) -> int:
    """Canary pods for the copies of `mirror` percent of what `stable` pods answer (shadow
    traffic reaches the canary Service only, never the client Service)."""
    return math.ceil(stable * mirror / 100) if stable > 0 and mirror > 0 else 0


def route(
    md: ModelDeployment,
    canary_running: bool,
    weight: int,
    stable_pods: int | None,
    canary_ready: int,
    mirror: int = 0,
    stable_floor: int | None = None,
) -> TrafficPlan:
    """Objects and replica counts for a canary at `weight` percent, beside `stable_pods`
    (the stable Deployment's current count; None before it exists), sized also for the
    copies of `mirror` percent of requests the stable pods send it.

    A running canary keeps one pod up at weight 0, so it is proven Ready
    before it takes any traffic. At 100 the Service selects the canary alone only once
    `canary_ready` pods (its ready count now) are as many as it is sized for: until then
    both serve, as in between, so a promotion never lands the whole load on a canary
    still starting the pods it needs for it. `stable_floor` holds the HPA's floor after a
    rollout (Intent.stable_floor).
    """
    base = base_replicas(md, stable_pods)
    canary = canary_size(md, weight, stable_pods, mirror) if canary_running else 0
    # The client Service splits the traffic; `NAME-canary` is what shadow copies go to, and
    # lets anyone call the canary alone, while there is one.
    variants: tuple[Variant, ...] = ("canary",) if canary_running else ()
    if not canary_running or weight <= 0:
        objects, share = services(md, "stable", None, stable_floor, variants), 0
    elif weight >= 100 and canary_ready >= canary:
        objects, share = services(md, "canary", canary, stable_floor, variants), 100
    elif weight >= 100:
        objects = services(md, None, canary, stable_floor, variants)
        share = round(100 * canary / (base + canary)) if base + canary else 0
    else:
        objects = services(md, None, base, stable_floor, variants)
        share = round(100 * canary / (base + canary)) if base + canary else 0
    return TrafficPlan(md.spec.stable_replicas, canary, tuple(objects), share)


class KubernetesRouter:
    """The `kubernetes` router as a `Router`: nothing to read, own or report."""

    name = "kubernetes"

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
        return route(md, canary_running, weight, stable_pods, canary_ready, mirror, stable_floor)

    def canary_size(
        self, md: ModelDeployment, weight: int, stable_pods: int | None, mirror: int = 0
    ) -> int:
        return canary_size(md, weight, stable_pods, mirror)

    def owned(self, md: ModelDeployment) -> tuple[ObjectRef, ...]:
        return ()

    def routed(self, applied: Manifest) -> Routed | None:
        return None

    def refused(self, obj: Manifest, status: int) -> Routed | None:
        return None
