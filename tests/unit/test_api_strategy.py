"""RolloutStrategy: steps, analysis and the weight order."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from coalmine.api import RolloutStrategySpec
from coalmine.api.strategy import Analysis, Step, summarize
from tests.integration.test_admission import strategy_spec

ERRORS = {
    "name": "errors",
    "provider": "builtin",
    "builtin": {"metric": "errorRate"},
    "threshold": {"max": 0.01},
}


def test_defaults_are_explicit() -> None:
    spec = RolloutStrategySpec()
    assert spec.steps == []
    assert spec.progress_deadline_seconds == 600
    assert spec.require_approval is False
    assert (spec.scale_down_delay_seconds, spec.abort_scale_down_delay_seconds) == (30, 30)
    assert spec.max_canary_restarts == 3
    analysis = Analysis.model_validate({"metrics": [ERRORS]})
    assert (analysis.interval, analysis.count, analysis.failure_limit) == ("10s", 3, 0)
    assert analysis.inconclusive_limit is None
    assert analysis.metrics[0].min_sample_count == 10


def test_pause_without_duration_waits_for_promote() -> None:
    step = Step.model_validate({"pause": {}})
    assert step.pause is not None
    assert step.pause.duration is None
    assert step.to_json() == {"pause": {}}


@given(st.lists(st.integers(0, 100), max_size=10))
def test_weights_must_not_decrease(weights: list[int]) -> None:
    raw = {"steps": [{"setWeight": w} for w in weights]}
    if weights == sorted(weights):
        assert RolloutStrategySpec.model_validate(raw).weights == weights
    else:
        with pytest.raises(ValidationError, match="must not decrease"):
            RolloutStrategySpec.model_validate(raw)


@given(st.lists(st.sampled_from(["setWeight", "pause", "analysis", "mirror"]), max_size=4))
def test_a_step_has_exactly_one_action(actions: list[str]) -> None:
    values: dict[str, Any] = {
        "setWeight": 10,
        "pause": {},
        "analysis": {"metrics": [ERRORS]},
        "mirror": 50,
    }
    raw = {a: values[a] for a in actions}
    if len(raw) == 1:
        assert Step.model_validate(raw).to_json().keys() == raw.keys()
    else:
        with pytest.raises(ValidationError, match="exactly one of"):
            Step.model_validate(raw)


def test_mirror_steps_do_not_count_as_weights() -> None:
    spec = RolloutStrategySpec.model_validate(
        {"steps": [{"setWeight": 50}, {"mirror": 10}, {"setWeight": 60}]}
    )
    assert spec.weights == [50, 60]


@pytest.mark.parametrize(
    ("threshold", "ok"),
    [
        ({"max": 1}, True),
        ({"min": 0}, True),
        ({"min": 0, "max": 1}, True),
        ({}, False),
        ({"min": 2, "max": 1}, False),
    ],
)
def test_thresholds(threshold: dict[str, float], ok: bool) -> None:
    raw = {"metrics": [ERRORS | {"threshold": threshold}]}
    if ok:
        assert Analysis.model_validate(raw).metrics[0].threshold.to_json() == threshold
    else:
        with pytest.raises(ValidationError, match="threshold"):
            Analysis.model_validate(raw)


def test_prometheus_metric() -> None:
    metric = {
        "name": "p99",
        "provider": "prometheus",
        "prometheus": {"address": "http://prom:9090", "query": "histogram_quantile(0.99, x)"},
        "threshold": {"max": 0.25},
    }
    parsed = Analysis.model_validate({"metrics": [metric]}).metrics[0]
    assert parsed.prometheus is not None
    assert parsed.prometheus.address == "http://prom:9090"


def test_metric_names_are_unique() -> None:
    with pytest.raises(ValidationError, match="unique"):
        Analysis.model_validate({"metrics": [ERRORS, ERRORS]})


@pytest.mark.parametrize("interval", ["1s", "5s", "1m"])
def test_intervals_down_to_one_second(interval: str) -> None:
    assert Analysis.model_validate({"interval": interval, "metrics": [ERRORS]}).interval == interval


def test_summary_reads_like_the_steps() -> None:
    spec = RolloutStrategySpec.model_validate(strategy_spec())
    assert summarize(spec) == (
        "20% > analysis 3x10s > 50% > pause until promote > pause 1m > mirror 100%"
    )
    assert summarize(RolloutStrategySpec()) == "promote when Ready"


def test_round_trip_keeps_the_wire_format() -> None:
    raw = strategy_spec()
    dumped = RolloutStrategySpec.model_validate(raw).to_json()
    assert dumped["steps"][0] == {"setWeight": 20}
    assert dumped["progressDeadlineSeconds"] == 120
    assert RolloutStrategySpec.model_validate(dumped) == RolloutStrategySpec.model_validate(raw)
