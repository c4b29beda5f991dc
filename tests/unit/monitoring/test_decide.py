"""Monitoring's share of a plan: windows from the baselines in status, the ModelHealthy
condition naming what fires, Events and one webhook call per firing, defaults from a
reference, and a fresh start for a new version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from coalmine.api.counters import VariantCounters
from coalmine.api.deployment import ModelDeployment, ModelDeploymentStatus
from coalmine.api.modelversion import ModelVersion
from coalmine.monitoring.checks import checks_for, monitoring_due, next_due
from coalmine.monitoring.decide import Monitored, MonitoringScrape, VariantScrape, monitor
from tests.unit.rollout.sim import deployment, model_version

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BINS = {"petal_length": {"0": 50.0, "1": 50.0}, "sepal_width": {"0": 50.0, "1": 50.0}}


def check(name: str, metric: str, **threshold: float) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "builtin",
        "builtin": {"metric": metric},
        "threshold": threshold,
        "minSampleCount": 10,
    }


def watched(*checks: dict[str, Any], webhook: bool = True) -> ModelDeployment:
    monitoring: dict[str, Any] = {"interval": "10s", "checks": list(checks)}
    if webhook:
        monitoring["webhook"] = {"url": "http://retrain.ml:8080/hook"}
    return deployment("iris-v1", spec={"monitoring": monitoring})


def with_reference(name: str = "iris-v1", accuracy: float | None = None) -> ModelVersion:
    mv = model_version(name)
    features = [{"name": f, "binEdges": [0.0, 1.0, 2.0], "fractions": [0.5, 0.5]} for f in BINS]
    update: dict[str, Any] = {"reference": {"features": features}}
    if accuracy is not None:
        update["metrics"] = {"accuracy": accuracy}
    spec = mv.spec.model_validate({**mv.spec.to_json(), **update})
    return mv.model_copy(update={"spec": spec})


def counters(
    rows: float, out_of_range: float = 0, bins: Any = None, **more: float
) -> VariantCounters:
    return VariantCounters(
        pods=1,
        requests=rows,
        input_rows=rows,
        out_of_range_rows=out_of_range,
        feature_bins=bins or {f: {"0": rows / 2, "1": rows / 2} for f in BINS},
        predictions={"setosa": rows},
        **more,
    )


def run(md: ModelDeployment, series: list[VariantCounters], version: str = "v1") -> Monitored:
    """Feed one scrape of stable every 10 s; the status of each becomes the next's input."""
    versions = {"iris-v1": with_reference(), "iris-v2": with_reference("iris-v2")}
    checks = checks_for(md, versions["iris-v1"])
    result = None
    last = md.status.monitoring.measured_at if md.status and md.status.monitoring else None
    start = T0 if last is None else last + timedelta(seconds=10)
    for i, c in enumerate(series):
        now = start + timedelta(seconds=10 * i)
        scrape = MonitoringScrape((VariantScrape("stable", version, f"iris-{version}", c),))
        result = monitor(md, checks, scrape, versions, now)
        md.status = (md.status or ModelDeploymentStatus()).model_copy(
            update={"monitoring": result.status}
        )
    assert result is not None
    return result


def test_the_first_scrape_only_starts_the_window() -> None:
    result = run(watched(check("ood", "outOfDistribution", max=0.05)), [counters(100, 90)])
    assert result.health is not None
    assert (result.health.status, result.health.reason) == ("Unknown", "AwaitingMeasurement")


def test_out_of_distribution_traffic_turns_it_false_names_the_check_and_calls_once() -> None:
    md = watched(check("ood", "outOfDistribution", max=0.05))
    result = run(md, [counters(100), counters(200, 40)])
    assert result.health is not None
    assert result.health.status == "False"
    assert result.health.reason == "OutOfDistribution"
    assert result.health.message == "stable v1: ood 0.40 > max 0.05"
    assert result.events == [("Warning", "CheckFiring", "stable v1: ood 0.40 > max 0.05")]
    [call] = result.notifications
    assert call.url == "http://retrain.ml:8080/hook"
    assert call.body["check"] == "ood"
    assert call.body["value"] == 0.4
    assert call.body["modelVersion"] == "iris-v1"
    assert call.body["reason"] == "OutOfDistribution"
    again = run(md, [counters(300, 80)])  # still firing: no second call
    assert again.notifications == []
    assert again.health is not None
    assert again.health.status == "False"


def test_it_recovers_once_the_traffic_is_back_in_range_for_keep_firing_for() -> None:
    md = watched({**check("ood", "outOfDistribution", max=0.05), "keepFiringFor": "10s"})
    run(md, [counters(100), counters(200, 40)])
    held = run(md, [counters(300, 40)])  # the window holds no out-of-range row
    assert held.health is not None
    assert held.health.status == "False"
    result = run(md, [counters(400, 40)])
    assert result.health is not None
    assert (result.health.status, result.health.reason) == ("True", "ChecksPassing")
    assert result.events == [("Normal", "CheckResolved", "stable v1: ood 0.00 within max 0.05")]


def test_drift_names_the_feature_that_moved() -> None:
    md = watched(check("drift", "inputDrift", max=0.25))
    shifted = {"petal_length": {"0": 150.0, "1": 50.0}, "sepal_width": {"0": 100.0, "1": 100.0}}
    before = {"petal_length": {"0": 50.0, "1": 50.0}, "sepal_width": {"0": 50.0, "1": 50.0}}
    result = run(md, [counters(100, bins=before), counters(200, bins=shifted)])
    assert result.health is not None
    assert result.health.reason == "InputDrift"
    assert "(feature petal_length) > max 0.25" in result.health.message


def test_accuracy_from_feedback_fires_below_min() -> None:
    md = watched(check("accuracy", "accuracy", min=0.9))
    result = run(
        md,
        [
            counters(100, labelled_rows=50, correct_rows=48),
            counters(200, labelled_rows=150, correct_rows=98),
        ],
    )
    assert result.health is not None
    assert (result.health.reason, result.health.message) == (
        "Accuracy",
        "stable v1: accuracy 0.50 < min 0.90",
    )


def test_a_new_version_starts_its_checks_and_window_afresh() -> None:
    md = watched(check("ood", "outOfDistribution", max=0.05))
    run(md, [counters(100), counters(200, 40)])
    result = run(md, [counters(10)], version="v2")
    assert result.health is not None
    assert result.health.status == "Unknown"
    assert [(c.version, c.state) for c in result.status.checks] == [("v2", "Unknown")]  # type: ignore[union-attr]


def test_a_reference_brings_default_checks_and_a_stated_accuracy_a_floor() -> None:
    plain = deployment("iris-v1")
    assert checks_for(plain, model_version("iris-v1")) == []
    names = [c.name for c in checks_for(plain, with_reference(accuracy=0.97))]
    assert names == ["inputDrift", "outOfDistribution", "errorRate", "accuracy"]
    floor = checks_for(plain, with_reference(accuracy=0.97))[-1].threshold.min
    assert floor == 0.87
    off = deployment("iris-v1", spec={"monitoring": {"checks": []}})
    assert checks_for(off, with_reference()) == []


def test_measurements_are_due_once_per_interval() -> None:
    md = watched(check("ood", "outOfDistribution", max=0.05))
    checks = checks_for(md, None)
    assert monitoring_due(md, checks, T0)
    run(md, [counters(100)])
    assert next_due(md) == T0 + timedelta(seconds=10)
    assert not monitoring_due(md, checks, T0 + timedelta(seconds=9))
    assert monitoring_due(md, checks, T0 + timedelta(seconds=10))
    assert not monitoring_due(md, [], T0 + timedelta(seconds=60))


def test_prediction_shift_compares_with_the_shares_the_model_version_recorded() -> None:
    mv = with_reference()
    spec = mv.spec.model_validate(
        {
            **mv.spec.to_json(),
            "reference": {
                **mv.spec.to_json()["reference"],
                "predictions": {"setosa": 0.5, "versicolor": 0.5},
            },
        }
    )
    recorded = mv.model_copy(update={"spec": spec})
    md = watched(check("shift", "predictionShift", max=0.2))
    checks = checks_for(md, recorded)
    one_class = [counters(100), counters(200)]  # every prediction is setosa
    result = None
    for i, c in enumerate(one_class):
        scrape = MonitoringScrape((VariantScrape("stable", "v1", "iris-v1", c),))
        result = monitor(md, checks, scrape, {"iris-v1": recorded}, T0 + timedelta(seconds=10 * i))
        md.status = ModelDeploymentStatus(monitoring=result.status)
    assert result is not None
    assert result.health is not None
    assert (result.health.reason, result.health.message) == (
        "PredictionShift",
        "stable v1: shift 0.50 > max 0.20",
    )
    assert [c.name for c in checks_for(deployment("iris-v1"), recorded)] == [
        "inputDrift",
        "outOfDistribution",
        "errorRate",
        "predictionShift",
    ]


def test_prediction_shift_without_recorded_shares_is_an_error_not_a_breach() -> None:
    md = watched(check("shift", "predictionShift", max=0.2))
    result = run(md, [counters(100), counters(200)])
    assert result.health is not None
    assert result.health.status == "Unknown"
    assert result.status is not None
    assert "records no reference.predictions" in (result.status.checks[0].message or "")
