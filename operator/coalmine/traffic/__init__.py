"""Traffic routers: turn a canary weight into Services, routes and replica counts.

Each router is one module with a class that is a `Router`; `ROUTERS` registers them by the
name `spec.traffic.router` gives, and `router_for` is all a caller needs.
"""

from __future__ import annotations

from coalmine.api.deployment import ModelDeployment
from coalmine.traffic.common import TrafficPlan
from coalmine.traffic.gatewayapi import GatewayAPIRouter
from coalmine.traffic.kubernetes import KubernetesRouter
from coalmine.traffic.router import Router

__all__ = ["ROUTERS", "Router", "TrafficPlan", "canary_pods", "router_for"]

ROUTERS: dict[str, Router] = {r.name: r for r in (KubernetesRouter(), GatewayAPIRouter())}


def router_for(md: ModelDeployment) -> Router:
    """The router `md.spec.traffic.router` names (the schema admits only registered ones)."""
    return ROUTERS[md.spec.traffic.router]


def canary_pods(md: ModelDeployment, weight: int, stable_pods: int | None, mirror: int = 0) -> int:
    """The canary pods `md`'s router runs at `weight` beside `stable_pods`, with copies of
    `mirror` percent of requests: what a step waits for before it pauses or measures."""
    return router_for(md).canary_size(md, weight, stable_pods, mirror)
