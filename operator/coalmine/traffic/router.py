"""What a router is: the one interface through which a reconcile moves traffic.

A router turns a weight into objects and replica counts, says which objects are its
alone (removed when another router takes over) and how an applied object reads as the
TrafficRouted condition. The reconcile holds a `Router` from the registry
(`coalmine.traffic.router_for`) and never names one; a new router is one module and
one registry line.
"""

from __future__ import annotations

from typing import Protocol

from coalmine.api.base import ConditionStatus
from coalmine.api.deployment import ModelDeployment
from coalmine.resources import Manifest
from coalmine.traffic.common import TrafficPlan

ROUTED = "TrafficRouted"
"""Condition type: whether the router's objects (a route its Gateways accepted) carry the
traffic, as of the last reconcile; routers without such objects leave it out."""
Routed = tuple[ConditionStatus, str, str]
"""The TrafficRouted condition's status, reason and message."""
ObjectRef = tuple[str, str | None, str]
"""(kind, namespace, name) of an object."""


class Router(Protocol):
    name: str

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
        """Objects and replica counts for a canary at `weight` percent, sized also for the
        stable pods' copies of `mirror` percent of requests, beside `stable_pods` (the
        stable Deployment's count now; None before it exists) and `canary_ready` ready
        canary pods, with the HPA's floor at `stable_floor` at least (after a rollout, for
        its scale-down window). No router copies requests itself: the stable pods do."""
        ...

    def canary_size(
        self, md: ModelDeployment, weight: int, stable_pods: int | None, mirror: int = 0
    ) -> int:
        """The canary pods at `weight` percent beside `stable_pods`, receiving copies of
        `mirror` percent of the requests too."""
        ...

    def owned(self, md: ModelDeployment) -> tuple[ObjectRef, ...]:
        """Objects only this router writes: deleted when another router takes over."""
        ...

    def routed(self, applied: Manifest) -> Routed | None:
        """The TrafficRouted condition an applied object of the plan tells, if any."""
        ...

    def refused(self, obj: Manifest, status: int) -> Routed | None:
        """The condition when the API server refused `obj` with HTTP `status` and the rest
        should go out regardless; None: the refusal is an error of the reconcile."""
        ...
