"""status.rolloutRecord: the points `coalmine report` draws, appended by the state machine.

Every Sim.step also re-plans from the status it wrote and asserts nothing changes, so
each test here also proves the record keeps plan() a fixed point.
"""

from __future__ import annotations

from coalmine.api.deployment import RECORD_POINTS, ModelDeploymentStatus, RolloutRecord
from coalmine.api.modelversion import ModelVersion
from coalmine.api.strategy import RolloutStrategySpec
from tests.unit.rollout.sim import Sim, analysis, strategy


def serving(versions: dict[str, ModelVersion], spec: RolloutStrategySpec, **kw: object) -> Sim:
    """v1 Healthy, then spec moves to v2."""
    sim = Sim(spec, versions, "iris-v1", **kw)  # type: ignore[arg-type]
    sim.step()
    sim.step(1)
    sim.target, sim.generation = "iris-v2", 2
    return sim


def record(sim: Sim) -> RolloutRecord:
    assert sim.status is not None
    assert sim.status.rollout_record is not None
    return sim.status.rollout_record


def test_no_record_before_any_rollout(versions: dict[str, ModelVersion]) -> None:
    sim = Sim(strategy({"setWeight": 20}), versions, "iris-v1")
    sim.step()
    status = sim.step(1).status
    assert status.phase == "Healthy"
    assert status.rollout_record is None


def test_a_promoted_rollout_records_weights_verdicts_and_the_promotion(
    versions: dict[str, ModelVersion],
) -> None:
    spec = strategy(
        {"setWeight": 20}, analysis(count=2), {"setWeight": 50}, {"pause": {"duration": "30s"}}
    )
    sim = serving(versions, spec)
    started = sim.step(1)
    rec = record(sim)
    assert (rec.revision, rec.model_version, rec.version, rec.from_version) == (
        2,
        "iris-v2",
        "v2",
        "v1",
    )
    assert rec.started_at == started.status.rollout_started_at
    assert [(p.canary_weight, p.phase, p.outcome) for p in rec.points] == [(0, "Progressing", None)]
    sim.until(lambda r: r.status.phase == "Healthy", seconds=5)
    points = record(sim).points
    assert [p.canary_weight for p in points if p.outcome is None] == [0, 20, 50, 100]
    judged = [p for p in points if p.outcome == "Successful"]
    assert len(judged) == 2
    assert all(p.canary_weight == 20 for p in judged)
    assert judged[0].metrics is not None
    error_rate = judged[0].metrics["errorRate"]
    assert (error_rate.canary, error_rate.outcome, error_rate.kind, error_rate.max) == (
        0.01,
        "Successful",
        "errorRate",
        0.05,
    )
    last = points[-1]
    assert (last.outcome, last.canary_weight, last.phase) == ("Promoted", 100, "Healthy")
    assert [p.time for p in points] == sorted(p.time for p in points)


def test_a_rollback_records_the_failed_verdict_then_the_rollback_with_its_reason(
    versions: dict[str, ModelVersion],
) -> None:
    sim = serving(versions, strategy({"setWeight": 20}, analysis(count=5)))
    sim.step(1)
    sim.step(1)
    sim.step(1)  # baseline: not a verdict, not a point
    assert [p.outcome for p in record(sim).points] == [None, None]
    rolled = sim.step(10, outcome="Failed")
    assert rolled.status.phase == "RolledBack"
    *_, failed, end = record(sim).points
    assert (failed.outcome, failed.canary_weight) == ("Failed", 20)
    assert failed.metrics is not None
    assert failed.metrics["errorRate"].outcome == "Failed"
    assert (end.outcome, end.canary_weight, end.phase) == ("RolledBack", 0, "RolledBack")
    assert end.message is not None
    assert end.message.startswith("analysis failed")
    assert end.time == sim.now
    # Nothing more is recorded while it stays rolled back.
    count = len(record(sim).points)
    sim.step(60)
    assert len(record(sim).points) == count


def test_a_new_revision_starts_a_new_record(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy({"setWeight": 20}, analysis(count=5)))
    sim.step(1)
    sim.step(1)
    sim.step(1)
    sim.step(10, outcome="Failed")
    assert record(sim).revision == 2
    sim.target, sim.generation = "iris-v3", 3
    sim.step(1)
    rec = record(sim)
    assert (rec.revision, rec.model_version, rec.from_version) == (3, "iris-v3", "v1")
    assert [(p.canary_weight, p.outcome) for p in rec.points] == [(0, None)]


def test_the_end_is_recorded_even_without_history(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy({"setWeight": 20}), history_limit=0)
    sim.until(lambda r: r.status.phase == "Healthy", seconds=1)
    assert sim.status is not None
    assert sim.status.history == []
    assert record(sim).points[-1].outcome == "Promoted"


def test_the_record_keeps_only_the_newest_points(versions: dict[str, ModelVersion]) -> None:
    # A long deadline: inconclusive measurements go on until the record is full.
    spec = strategy({"setWeight": 20}, analysis(count=1), progressDeadlineSeconds=3600)
    sim = serving(versions, spec)
    sim.step(1)
    sim.step(1)
    sim.step(1)
    for _ in range(RECORD_POINTS + 30):
        sim.step(10, outcome="Inconclusive")
    points = record(sim).points
    assert len(points) == RECORD_POINTS
    assert points[-1].time == sim.now
    assert all(p.outcome == "Inconclusive" for p in points)
    # The bounded record still fits the CRD's limit when read back.
    assert sim.status is not None
    again = ModelDeploymentStatus.model_validate(sim.status.to_json())
    assert again.rollout_record == sim.status.rollout_record
