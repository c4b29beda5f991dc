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
    md: ModelDeployment, client_variant: Variant | None, serving_pods: int | None = None
) -> list[Manifest]:
    """The client Service (selecting `client_variant`, or both when None), the
    per-variant Services and the HPA.

    `serving_pods`: while the canary alone serves (promotion), its pod count, which the
    HPA takes as its floor: the idle stable pods it watches must not shrink under what
    will serve again once stable takes the new version."""
    client = build_service(md)
    if client_variant is not None:
        client["spec"]["selector"][VARIANT_LABEL] = client_variant
    objects = [client, build_service(md, "stable"), build_service(md, "canary")]
    hpa = build_hpa(md, serving_pods)
    if hpa is not None:
        objects.append(hpa)
    return objects
