"""The HorizontalPodAutoscaler of the stable pods, when autoscaling is requested."""

from __future__ import annotations

from coalmine.api.deployment import ModelDeployment
from coalmine.resources.naming import (
    Manifest,
    common_labels,
    deployment_name,
    hpa_name,
    object_meta,
)

DEFAULT_SCALE_DOWN_WINDOW = 300
"""Kubernetes' scale-down stabilization window when `behavior` leaves it unset, seconds."""


def build_hpa(md: ModelDeployment, floor: int | None = None) -> Manifest | None:
    """An autoscaling/v2 HPA on CPU for the stable Deployment, or None without autoscaling.

    Only stable scales: the canary's size follows from the stable count and the
    current weight, which the rollout decides. `floor` raises minReplicas (up to
    maxReplicas) while a rollout needs stable held at its size (the routers say when).
    """
    autoscaling = md.spec.autoscaling
    if autoscaling is None:
        return None
    lowest = autoscaling.min_replicas
    if floor is not None:
        lowest = min(max(lowest, floor), autoscaling.max_replicas)
    hpa: Manifest = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_meta(hpa_name(md), md, common_labels(md, "stable")),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": deployment_name(md, "stable"),
            },
            "minReplicas": lowest,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": autoscaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }
    if autoscaling.scale_down_stabilization_seconds is not None:
        hpa["spec"]["behavior"] = {
            "scaleDown": {
                "stabilizationWindowSeconds": autoscaling.scale_down_stabilization_seconds
            }
        }
    return hpa
