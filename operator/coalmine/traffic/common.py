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


def base_replicas(md: ModelDeployment) -> int:
    """Stable pods to size the canary against: the HPA's floor when it owns the count."""
    autoscaling = md.spec.autoscaling
    if autoscaling is not None:
        return autoscaling.min_replicas
    return md.spec.stable_replicas or 0


def services(md: ModelDeployment, client_variant: Variant | None) -> list[Manifest]:
    """The client Service (selecting `client_variant`, or both when None), the
    per-variant Services and the HPA."""
    client = build_service(md)
    if client_variant is not None:
        client["spec"]["selector"][VARIANT_LABEL] = client_variant
    objects = [client, build_service(md, "stable"), build_service(md, "canary")]
    hpa = build_hpa(md)
    if hpa is not None:
        objects.append(hpa)
    return objects
