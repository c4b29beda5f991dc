"""Services: the stable endpoint and one per variant."""

from __future__ import annotations

from typing import Any

import pytest

from coalmine.api import ModelDeployment
from coalmine.resources import build_service, service_url
from coalmine.resources.naming import VARIANTS, Variant
from tests.integration.test_admission import model_deployment


def md(**spec: Any) -> ModelDeployment:
    doc = model_deployment()
    doc["metadata"] |= {"namespace": "ml", "uid": "uid-1"}
    doc["spec"].update(spec)
    doc["spec"] = {k: v for k, v in doc["spec"].items() if v is not None}
    return ModelDeployment.model_validate(doc)


def test_stable_endpoint_selects_both_variants() -> None:
    svc = build_service(md())
    assert svc["metadata"]["name"] == "iris"
    assert svc["spec"]["selector"] == {"coalmine.dev/deployment": "iris"}
    assert svc["spec"]["ports"][0] == {
        "name": "http",
        "port": 80,
        "targetPort": "http",
        "protocol": "TCP",
        "appProtocol": "http",
    }
    assert svc["spec"]["ports"][1] == {
        "name": "grpc",
        "port": 8081,
        "targetPort": "grpc",
        "protocol": "TCP",
        "appProtocol": "kubernetes.io/h2c",
    }
    assert "coalmine.dev/variant" not in svc["metadata"]["labels"]
    assert svc["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_service(variant: Variant) -> None:
    svc = build_service(md(), variant)
    assert svc["metadata"]["name"] == f"iris-{variant}"
    assert svc["spec"]["selector"]["coalmine.dev/variant"] == variant
    assert svc["metadata"]["labels"]["coalmine.dev/variant"] == variant


def test_url_names_the_stable_endpoint() -> None:
    assert service_url(md()) == "http://iris.ml.svc.cluster.local"
