"""/metrics after a known sequence of requests: counts, labels, classes and drift."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serving import server as srv
from tests.serving.conftest import N_FEATURES, Artifacts

LABELS = {"model": "lr", "version": "3", "variant": "stable"}


@pytest.fixture(scope="module")
def scraped(artifacts: Artifacts) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Send a known mix of traffic to a fresh server, then scrape it once."""
    server = srv.start(
        ["--name", "lr", "--uri", str(artifacts.lr_skops), "--reference", str(artifacts.reference)],
        {"COALMINE_MODEL_VERSION": "3", "COALMINE_VARIANT": "stable"},
    )
    try:
        x = artifacts.x
        for i in range(5):  # 5 V2 requests of 2 rows
            rows = x[2 * i : 2 * i + 2]
            body = {"inputs": [{"name": "x", "shape": [2, N_FEATURES], "datatype": "FP64",
                                "data": rows.tolist()}]}  # fmt: skip
            assert server.post("/v2/models/lr/infer", body).status_code == 200
        for i in range(3):  # 3 V1 requests of 1 row, the last one out of range
            row = x[10 + i].copy()
            if i == 2:
                row[0] = 1e6
            assert server.post("/v1/models/lr:predict", {"instances": [row.tolist()]}).ok
        assert server.post("/v1/models/lr:predict", {"instances": [[1.0]]}).status_code == 400
        assert server.post("/v2/models/lr/infer", {"inputs": []}).status_code == 400
        assert server.get("/v2/health/ready").ok  # probes are not counted
        text = server.get("/metrics").text
    finally:
        server.stop()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, frozenset({**LABELS, **labels}.items()))]


def test_requests_and_errors_by_protocol_and_code(scraped: dict) -> None:
    assert value(scraped, "coalmine_requests_total", protocol="v2", code="200") == 5
    assert value(scraped, "coalmine_requests_total", protocol="v1", code="200") == 3
    assert value(scraped, "coalmine_requests_total", protocol="v1", code="400") == 1
    assert value(scraped, "coalmine_request_errors_total", protocol="v2", code="400") == 1
    assert (
        "coalmine_request_errors_total",
        frozenset({**LABELS, "protocol": "v2", "code": "200"}.items()),
    ) not in scraped


def test_latency_histogram(scraped: dict) -> None:
    assert value(scraped, "coalmine_request_duration_seconds_count", protocol="v2") == 6
    assert value(scraped, "coalmine_request_duration_seconds_bucket", protocol="v1", le="+Inf") == 4
    assert 0 < value(scraped, "coalmine_request_duration_seconds_sum", protocol="v1") < 4.0


def test_batch_sizes(scraped: dict) -> None:
    assert value(scraped, "coalmine_batch_size_count") == 8  # sequential: one call per request
    assert value(scraped, "coalmine_batch_size_sum") == 13
    assert value(scraped, "coalmine_batch_size_bucket", le="1.0") == 3


def test_predictions_by_class(scraped: dict, artifacts: Artifacts) -> None:
    x = artifacts.x[:13].copy()
    x[12, 0] = 1e6
    expected = Counter(str(c) for c in artifacts.lr.predict(x).tolist())
    for cls, count in expected.items():
        assert value(scraped, "coalmine_predictions_total", **{"class": cls}) == count


def test_drift_and_out_of_range(scraped: dict) -> None:
    assert value(scraped, "coalmine_input_rows_total") == 13
    assert value(scraped, "coalmine_input_out_of_range_rows_total") == 1
    assert value(scraped, "coalmine_input_out_of_range_ratio") == pytest.approx(1 / 13)
    assert value(scraped, "coalmine_feature_out_of_range_total", feature="f0") == 1
    assert value(scraped, "coalmine_feature_out_of_range_total", feature="f1") == 0
    psi = [value(scraped, "coalmine_feature_psi", feature=f"f{j}") for j in range(N_FEATURES)]
    assert all(np.isfinite(psi))
    assert min(psi) >= 0
    bins = [
        value(scraped, "coalmine_feature_bin_total", feature="f0", bin=str(b)) for b in range(10)
    ]
    assert sum(bins) == 13
