"""The prometheus provider: query rendering and response decoding."""

from __future__ import annotations

import io
import json
import math
import urllib.request
from typing import Any

import pytest

from coalmine.analysis import previous_snapshots, prometheus_client, render_query
from coalmine.api.counters import VariantCounters
from coalmine.api.deployment import (
    AnalysisRun,
    ModelDeployment,
    ModelDeploymentStatus,
    VariantStatus,
)
from tests.unit.rollout.sim import T0, deployment


def with_variants() -> ModelDeployment:
    status = ModelDeploymentStatus(
        stable=VariantStatus(model_version="iris-v1", version="v1", revision=1, weight=80),
        canary=VariantStatus(model_version="iris-v2", version="v2", revision=2, weight=20),
    )
    return deployment("iris-v2", status)


def test_render_query_fills_placeholders() -> None:
    query = (
        'sum(rate(x{namespace="{{namespace}}",deployment="{{ deployment }}",version="{{canary}}"}'
        '[{{interval}}])) / sum(rate(x{version="{{stable}}"}[{{interval}}]))'
    )
    assert render_query(query, with_variants(), "30s") == (
        'sum(rate(x{namespace="ml",deployment="iris",version="v2"}[30s]))'
        ' / sum(rate(x{version="v1"}[30s]))'
    )


def test_render_query_rejects_unknown_placeholders() -> None:
    with pytest.raises(ValueError, match="cluster, pod"):
        render_query("up{a='{{pod}}',b='{{cluster}}'}", with_variants())


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"resultType": "scalar", "result": [1.0, "0.25"]}, 0.25),
        ({"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "3"]}]}, 3.0),
    ],
)
def test_scalar_of(data: dict[str, Any], expected: float) -> None:
    assert prometheus_client.scalar_of({"status": "success", "data": data}) == expected


def test_empty_vector_is_no_data() -> None:
    body = {"status": "success", "data": {"resultType": "vector", "result": []}}
    assert math.isnan(prometheus_client.scalar_of(body))


@pytest.mark.parametrize(
    "body",
    [
        {"status": "error", "errorType": "bad_data", "error": "parse error"},
        {"status": "success", "data": {"resultType": "matrix", "result": []}},
        {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"value": [0, "1"]}] * 2},
        },
    ],
)
def test_unusable_responses_raise(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="prometheus"):
        prometheus_client.scalar_of(body)


def test_query_prometheus_calls_the_http_api(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def fake_urlopen(url: str, timeout: float) -> io.BytesIO:
        seen.append(url)
        body = {"status": "success", "data": {"resultType": "scalar", "result": [0, "7"]}}
        return io.BytesIO(json.dumps(body).encode())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    assert prometheus_client.query_prometheus("http://prom:9090/", 'up{a="b"}') == 7
    assert seen == ["http://prom:9090/api/v1/query?query=up%7Ba%3D%22b%22%7D"]


def test_previous_snapshots_come_from_the_analysis_run() -> None:
    md = with_variants()
    assert previous_snapshots(md) == (None, None)
    assert md.status is not None
    snap = VariantCounters(pods=1, requests=3)
    md.status.analysis_run = AnalysisRun(step_index=1, started_at=T0, canary_snapshot=snap)
    assert previous_snapshots(md) == (snap, None)
