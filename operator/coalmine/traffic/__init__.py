"""Traffic routers: turn a canary weight into Services, routes and replica counts."""

from __future__ import annotations

from coalmine.api.deployment import ModelDeployment
from coalmine.traffic import gatewayapi, kubernetes
from coalmine.traffic.common import TrafficPlan

__all__ = ["TrafficPlan", "route"]


def route(md: ModelDeployment, canary_running: bool, weight: int, mirror: int) -> TrafficPlan:
    """The plan of the router `md.spec.traffic.router` names."""
    if md.spec.traffic.router == "gatewayAPI":
        return gatewayapi.route(md, canary_running, weight, mirror)
    return kubernetes.route(md, canary_running, weight)
