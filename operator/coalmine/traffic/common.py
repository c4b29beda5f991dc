"""What every router shares: the plan it returns, the stable pod count, the Services."""

from __future__ import annotations

from dataclasses import dataclass

from coalmine.api.deployment import ModelDeployment
from coalmine.resources import Manifest, build_hpa, build_service
from coalmine.resources.naming import VARIANT_LABEL, Variant


@dataclass(frozen=True)
class TrafficPlan:
    stable_replicas: int | None  # None: the HPA owns the count
    canary_replicas: int
    objects: tuple[Manifest, ...]
    canary_share: int  # percent of client traffic the canary really gets


def base_replicas(md: ModelDeployment, stable_pods: int | None) -> int:
    """Stable pods to size the canary against.

    Under an HPA that is the count it set on the stable Deployment now (`stable_pods`,
    within its bounds; its floor before the Deployment exists): sized from minReplicas, a
    canary's real share would sink far below its weight as the HPA scales out, and a
    promotion would land the whole load on minReplicas pods."""
    autoscaling = md.spec.autoscaling
    if autoscaling is None:
        return md.spec.stable_replicas or 0
    if stable_pods is None:
        return autoscaling.min_replicas
    return min(max(stable_pods, autoscaling.min_replicas), autoscaling.max_replicas)


def services(
    md: ModelDeployment,
    client_variant: Variant | None,
    floor: int | None = None,
    stable_floor: int | None = None,
    variants: tuple[Variant, ...] = ("stable", "canary"),
) -> list[Manifest]:
    """The client Service (selecting `client_variant`, or both when None), the Services of
    `variants` and the HPA, whose minReplicas `floor` raises.

    A router writes only the per-variant Services something calls: each is a write, an
    EndpointSlice and proxy rules per ModelDeployment, and at 1,000 of them three Services
    apiece were a third of the operator's writes (benchmarks/operator).

    The HPA watches the stable pods only, and while a canary takes a share of the traffic
    they look less busy than the load is: the routers hold the floor at the stable pods
    there are, so the HPA may add pods but not take any away until the rollout ends. A
    rollback sends everything back to stable at once and must find it at full size, the
    canary is sized from it, and during a promotion (the canary alone serving) stable must
    not shrink under what will serve again once it takes the new version. After the rollout
    `stable_floor` (Intent.stable_floor) holds it for the HPA's scale-down window."""
    client = build_service(md)
    if client_variant is not None:
        client["spec"]["selector"][VARIANT_LABEL] = client_variant
    objects = [client, *(build_service(md, v) for v in variants)]
    held = [f for f in (floor, stable_floor) if f is not None]
    hpa = build_hpa(md, max(held) if held else None)
    if hpa is not None:
        objects.append(hpa)
    return objects
