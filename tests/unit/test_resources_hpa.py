"""The HorizontalPodAutoscaler, only when autoscaling is set."""

from __future__ import annotations

from typing import Any

import pytest

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


def test_scale_down_stabilization_is_rendered_only_when_set() -> None:
    auto = {"minReplicas": 1, "maxReplicas": 4}
    plain = build_hpa(md(replicas=None, autoscaling=auto))
    assert plain is not None
    assert "behavior" not in plain["spec"]
    quick = build_hpa(md(replicas=None, autoscaling=auto | {"scaleDownStabilizationSeconds": 30}))
    assert quick is not None
    assert quick["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 30}}


@pytest.mark.parametrize(("floor", "lowest"), [(None, 2), (1, 2), (3, 3), (9, 4)])
def test_a_floor_raises_min_replicas_within_max(floor: int | None, lowest: int) -> None:
    hpa = build_hpa(md(replicas=None, autoscaling={"minReplicas": 2, "maxReplicas": 4}), floor)
    assert hpa is not None
    assert hpa["spec"]["minReplicas"] == lowest
