"""Parsing the Prometheus text format, including the serving image's real output."""

from __future__ import annotations

import math

import pytest

from coalmine.analysis import Sample, parse_metrics

TEXT = r"""
# HELP coalmine_requests_total Inference requests answered.
# TYPE coalmine_requests_total counter
coalmine_requests_total{code="200",model="iris",protocol="v2",variant="canary",version="v2"} 41.0
coalmine_requests_total{ code = "500" , model="iris" , } 3 1700000000000
weird_label{path="C:\\models\\a \"quoted\"\nnext", empty=""} -2.5e-3
# TYPE coalmine_request_duration_seconds histogram
coalmine_request_duration_seconds_bucket{le="0.005",protocol="v2"} 1.0
coalmine_request_duration_seconds_bucket{le="+Inf",protocol="v2"} 2.0
coalmine_request_duration_seconds_sum{protocol="v2"} 0.033
coalmine_request_duration_seconds_count{protocol="v2"} 2
up 1
gauge_inf +Inf
gauge_nan NaN
gauge_neg_inf -Inf
"""


def test_parses_labels_escapes_timestamps_and_special_values() -> None:
    samples = parse_metrics(TEXT)
    assert samples[0] == Sample(
        "coalmine_requests_total",
        (
            ("code", "200"),
            ("model", "iris"),
            ("protocol", "v2"),
            ("variant", "canary"),
            ("version", "v2"),
        ),
        41.0,
    )
    assert samples[1] == Sample(
        "coalmine_requests_total", (("code", "500"), ("model", "iris")), 3.0
    )
    assert samples[2].label("path") == 'C:\\models\\a "quoted"\nnext'
    assert samples[2].label("empty") == ""
    assert samples[2].value == -0.0025
    assert samples[4].label("le") == "+Inf"
    assert samples[7] == Sample("up", (), 1.0)
    assert samples[8].value == math.inf
    assert math.isnan(samples[9].value)
    assert samples[10].value == -math.inf
    assert len(samples) == 11


@pytest.mark.parametrize(
    "line",
    ['m{a="1"', "m{a=1} 2", 'm{1a="x"} 2', "m", "m 1 2 3", '{a="b"} 1', "m abc"],
)
def test_malformed_lines_raise(line: str) -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse_metrics(line)


def test_parses_the_serving_image_output() -> None:
    np = pytest.importorskip("numpy")
    metrics_module = pytest.importorskip("coalmine_serving.metrics")
    m = metrics_module.Metrics("iris", "v2", "canary", is_classifier=True)
    m.request("v2", 200, 0.003)
    m.request("v2", 500, 0.03)
    m.batch(np.zeros((3, 2)), np.array(["setosa", "virginica", "setosa"]))
    samples = parse_metrics(m.render().decode())
    names = {s.name for s in samples}
    assert {"coalmine_requests_total", "coalmine_request_duration_seconds_bucket"} <= names
    predictions = {
        s.label("class"): s.value for s in samples if s.name == "coalmine_predictions_total"
    }
    assert predictions == {"setosa": 2.0, "virginica": 1.0}
