"""The HorizontalPodAutoscaler, only when autoscaling is set."""

from __future__ import annotations

from typing import Any

from coalmine.api import ModelDeployment
from coalmine.resources import build_hpa
from tests.integration.test_admission import model_deployment


def md(**spec: Any) -> ModelDeployment:
    doc = model_deployment()
    doc["metadata"] |= {"namespace": "ml", "uid": "uid-1"}
    doc["spec"].update(spec)
    doc["spec"] = {k: v for k, v in doc["spec"].items() if v is not None}
    return ModelDeployment.model_validate(doc)


def test_no_hpa_without_autoscaling() -> None:
    assert build_hpa(md()) is None


def test_hpa_scales_the_stable_deployment() -> None:
    hpa = build_hpa(
        md(
            replicas=None,
            autoscaling={"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 70},
        )
    )
    assert hpa is not None
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "iris-stable",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    target = hpa["spec"]["metrics"][0]["resource"]
    assert target == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    assert hpa["metadata"]["labels"]["coalmine.dev/variant"] == "stable"
