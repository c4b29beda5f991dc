"""The `kubernetes` router: one Service, weights approximated by replica counts.

No extra components. The client-facing Service selects the stable pods only
at weight 0 and the canary pods only at weight 100, so those two ends are
exact and a rollback takes effect as fast as kube-proxy applies one Service
change. In between, both variants sit behind the Service and kube-proxy
spreads connections evenly over pods, so the canary's share is its share of
the ready pods: canary/(stable + canary), reported in status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from coalmine.api.deployment import ModelDeployment
from coalmine.resources import Manifest, build_hpa, build_service
from coalmine.resources.naming import VARIANT_LABEL


@dataclass(frozen=True)
class TrafficPlan:
    stable_replicas: int | None  # None: the HPA owns the count
    canary_replicas: int
    objects: tuple[Manifest, ...]
    canary_share: int  # percent of client traffic the canary really gets


def canary_replicas_for(stable: int, weight: int) -> int:
    """Fewest canary pods whose share of all pods comes closest to `weight`, at least one."""
    if weight <= 0 or stable <= 0:
        return 0
    if weight >= 100:
        return stable
    exact = stable * weight / (100 - weight)  # c / (s + c) == w / 100
    candidates = {max(1, math.floor(exact)), max(1, math.ceil(exact))}
    return min(candidates, key=lambda c: (abs(c / (stable + c) - weight / 100), c))


def route(md: ModelDeployment, canary_running: bool, weight: int) -> TrafficPlan:
    """Objects and replica counts for a canary at `weight` percent.

    A running canary keeps one pod up at weight 0, so it is proven Ready
    before it takes any traffic.
    """
    autoscaling = md.spec.autoscaling
    stable = md.spec.stable_replicas
    base = autoscaling.min_replicas if autoscaling is not None else (stable or 0)
    canary = canary_replicas_for(base, weight) if canary_running else 0
    if canary_running and canary == 0 and base > 0:
        canary = 1

    service = build_service(md)
    if not canary_running or weight <= 0:
        service["spec"]["selector"][VARIANT_LABEL] = "stable"
        share = 0
    elif weight >= 100:
        service["spec"]["selector"][VARIANT_LABEL] = "canary"
        share = 100
    else:
        share = round(100 * canary / (base + canary)) if base + canary else 0

    objects: list[Manifest] = [service, build_service(md, "stable"), build_service(md, "canary")]
    hpa = build_hpa(md)
    if hpa is not None:
        objects.append(hpa)
    return TrafficPlan(stable, canary, tuple(objects), share)
