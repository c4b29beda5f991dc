"""ModelDeployment: spec choices, defaults and the status the rollout keeps."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from coalmine.api import ModelDeployment, ModelDeploymentSpec, ModelDeploymentStatus
from coalmine.api.deployment import COMMAND_ANNOTATIONS
from tests.integration.test_admission import model_deployment, strategy_spec


def spec(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = model_deployment()["spec"]
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def test_defaults() -> None:
    parsed = ModelDeploymentSpec.model_validate(spec(replicas=None))
    assert parsed.traffic.router == "kubernetes"
    assert (parsed.serving.workers, parsed.serving.max_batch_size) == (1, 64)
    assert parsed.revision_history_limit == 10
    assert parsed.stable_replicas == 1


@pytest.mark.parametrize(("replicas", "expected"), [(0, 0), (3, 3)])
def test_stable_replicas_follow_the_spec(replicas: int, expected: int) -> None:
    assert ModelDeploymentSpec.model_validate(spec(replicas=replicas)).stable_replicas == expected


def test_autoscaling_leaves_replicas_to_the_hpa() -> None:
    parsed = ModelDeploymentSpec.model_validate(spec(replicas=None, autoscaling={"maxReplicas": 5}))
    assert parsed.stable_replicas is None
    assert parsed.autoscaling is not None
    assert parsed.autoscaling.min_replicas == 1
    assert parsed.autoscaling.target_cpu_utilization_percentage == 80
    wire = parsed.to_json()["autoscaling"]
    assert wire == {"minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 80}


def test_inline_strategy_is_a_full_strategy() -> None:
    parsed = ModelDeploymentSpec.model_validate(spec(strategyRef=None, strategy=strategy_spec()))
    assert parsed.strategy is not None
    assert parsed.strategy.weights == [20, 50]


def test_gateway_api_router() -> None:
    traffic = {
        "router": "gatewayAPI",
        "gatewayAPI": {"parentRefs": [{"name": "gw", "sectionName": "http"}]},
    }
    parsed = ModelDeploymentSpec.model_validate(spec(traffic=traffic))
    assert parsed.traffic.gateway_api is not None
    assert parsed.traffic.gateway_api.parent_refs[0].section_name == "http"
    assert parsed.to_json()["traffic"] == traffic


def test_gateway_settings_need_the_gateway_router() -> None:
    traffic = {"router": "kubernetes", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}}
    with pytest.raises(ValidationError, match="gatewayAPI"):
        ModelDeploymentSpec.model_validate(spec(traffic=traffic))


@pytest.mark.parametrize("limit", [-1, 101])
def test_history_limit_is_bounded(limit: int) -> None:
    with pytest.raises(ValidationError, match="revisionHistoryLimit"):
        ModelDeploymentSpec.model_validate(spec(revisionHistoryLimit=limit))


def test_resources_accept_integer_and_string_quantities() -> None:
    resources = {"requests": {"cpu": 1, "memory": "256Mi"}, "limits": {"nvidia.com/gpu": 1}}
    parsed = ModelDeploymentSpec.model_validate(spec(resources=resources))
    assert parsed.to_json()["resources"] == resources


STATUS = {
    "observedGeneration": 4,
    "phase": "RolledBack",
    "message": "errorRate 0.31 > 0.01",
    "url": "http://iris.default.svc.cluster.local",
    "stable": {"modelVersion": "iris-v1", "version": "v1", "revision": 1, "weight": 100},
    "canary": {"modelVersion": "iris-v2", "version": "v2", "revision": 2, "weight": 0},
    "currentStepIndex": 1,
    "rolloutStartedAt": "2026-01-01T00:00:00Z",
    "stepStartedAt": "2026-01-01T00:01:00Z",
    "analysisRun": {
        "stepIndex": 1,
        "startedAt": "2026-01-01T00:01:00Z",
        "measurements": 2,
        "failures": 1,
    },
    "lastAnalysis": {
        "revision": 2,
        "stepIndex": 1,
        "outcome": "Failed",
        "time": "2026-01-01T00:01:20Z",
        "metrics": [
            {
                "name": "errors",
                "outcome": "Failed",
                "value": 0.31,
                "stableValue": 0.0,
                "sampleCount": 80,
            }
        ],
    },
    "latestRevision": 2,
    "abortedRevision": 2,
    "canaryScaleDownAt": "2026-01-01T00:01:50Z",
    "handledCommands": {"abort": "1767225600"},
    "history": [
        {
            "revision": 2,
            "modelVersion": "iris-v2",
            "version": "v2",
            "outcome": "RolledBack",
            "reason": "analysis failed: errorRate",
            "time": "2026-01-01T00:01:20Z",
        }
    ],
    "conditions": [{"type": "Ready", "status": "True", "reason": "Serving", "message": ""}],
}


def test_status_round_trips() -> None:
    parsed = ModelDeploymentStatus.model_validate(STATUS)
    assert parsed.analysis_run is not None
    assert parsed.analysis_run.failures == 1
    assert parsed.to_json() == ModelDeploymentStatus.model_validate(parsed.to_json()).to_json()
    assert parsed.to_json()["lastAnalysis"]["metrics"][0]["stableValue"] == 0.0


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("phase",), "Exploded"),
        (("canary", "weight"), 101),
        (("stable", "revision"), 0),
        (("analysisRun", "failures"), -1),
        (("history", 0, "outcome"), "Maybe"),
    ],
)
def test_status_rejects_impossible_values(path: tuple[str | int, ...], value: object) -> None:
    raw: Any = copy.deepcopy(STATUS)
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError):
        ModelDeploymentStatus.model_validate(raw)


def test_resource_with_status() -> None:
    doc = model_deployment() | {"status": STATUS}
    doc["metadata"] |= {"uid": "1234", "namespace": "ml", "generation": 4}
    parsed = ModelDeployment.model_validate(doc)
    assert parsed.status is not None
    assert parsed.status.phase == "RolledBack"
    assert parsed.metadata.uid == "1234"


def test_command_annotations_share_the_group() -> None:
    assert set(COMMAND_ANNOTATIONS) == {"promote", "abort", "retry", "undo"}
    assert all(v == f"coalmine.dev/{k}" for k, v in COMMAND_ANNOTATIONS.items())
