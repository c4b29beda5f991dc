"""The mirror file of shadow steps, and the pods that read it."""

from __future__ import annotations

import json
from typing import Any

from coalmine.api import ModelDeployment
from coalmine.resources.mirror import build_mirror_config
from tests.unit.test_traffic_kubernetes import md


def content(config: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(config["data"]["mirror.json"])
    return doc


def test_a_mirror_step_names_the_canary_service_share_and_version() -> None:
    config = build_mirror_config(md(), 25, "iris-v2")
    assert config["kind"] == "ConfigMap"
    assert config["metadata"]["name"] == "iris-mirror"
    assert config["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert content(config) == {
        "percent": 25,
        "url": "http://iris-canary.ml.svc:80",
        "canary": "iris-v2",
        "examples": True,
    }


def test_without_a_mirror_or_a_canary_nothing_is_copied() -> None:
    assert content(build_mirror_config(md(), 0, "iris-v2")) == {"percent": 0}
    assert content(build_mirror_config(md(), 50, None)) == {"percent": 0}


def test_examples_can_be_turned_off() -> None:
    private = ModelDeployment.model_validate(
        md().to_json() | {"spec": md().to_json()["spec"] | {"shadow": {"examples": False}}}
    )
    assert content(build_mirror_config(private, 10, "iris-v2"))["examples"] is False
