"""Traffic routers: turn a canary weight into Services, routes and replica counts."""

from __future__ import annotations

from coalmine.api.deployment import ModelDeployment
from coalmine.traffic import gatewayapi, kubernetes
from coalmine.traffic.common import TrafficPlan

__all__ = ["TrafficPlan", "canary_pods", "route"]


def route(
    md: ModelDeployment,
    canary_running: bool,
    weight: int,
    mirror: int,
    stable_pods: int | None,
    canary_ready: int,
) -> TrafficPlan:
    """The plan of the router `md.spec.traffic.router` names; `stable_pods` is the stable
    Deployment's current count (None before it exists), which an HPA sets, `canary_ready`
    the canary's ready pods now."""
    if md.spec.traffic.router == "gatewayAPI":
        return gatewayapi.route(md, canary_running, weight, mirror, stable_pods)
    return kubernetes.route(md, canary_running, weight, stable_pods, canary_ready)


def canary_pods(md: ModelDeployment, weight: int, stable_pods: int | None) -> int:
    """The canary pods `md`'s router runs at `weight` beside `stable_pods`: what a step
    waits for before it pauses or measures (a mirror share can only add to it)."""
    if md.spec.traffic.router == "gatewayAPI":
        return gatewayapi.canary_size(md, weight, stable_pods)
    return kubernetes.canary_size(md, weight, stable_pods)
