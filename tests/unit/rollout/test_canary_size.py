"""A pause or an analysis starts once the canary runs every pod its weight asks, all ready."""

from __future__ import annotations

from typing import Any

from coalmine.api.modelversion import ModelVersion
from tests.unit.rollout.sim import Sim, analysis, strategy

STEPS = strategy({"setWeight": 50}, analysis(count=1), progressDeadlineSeconds=60)
"""With 4 stable pods, the kubernetes router runs 4 canary pods at 50%."""


def serving(versions: dict[str, ModelVersion]) -> Sim:
    """v1 Healthy on 4 pods, then spec moves to v2."""
    sim = Sim(STEPS, versions, "iris-v1", spec={"replicas": 4})
    sim.step()
    sim.step(1)
    sim.target, sim.generation = "iris-v2", 2
    return sim


def at_fifty(versions: dict[str, ModelVersion], pods: tuple[int, int]) -> Sim:
    """v2's canary is ready with one pod and walks to 50%, where the Deployment shows `pods`."""
    sim = serving(versions)
    sim.step(1)
    sim.canary_pods = (1, 1)
    walked = sim.step(1)
    assert walked.status.canary is not None
    assert walked.status.canary.weight == 50
    sim.canary_pods = pods
    return sim


def test_the_observation_of_the_old_size_does_not_start_the_analysis(
    versions: dict[str, ModelVersion],
) -> None:
    """The step that set the weight saw the canary at its old size (1 of 1 ready)."""
    sim = serving(versions)
    sim.step(1)
    sim.canary_pods = (1, 1)
    walked = sim.step(1)
    assert walked.status.analysis_run is None
    assert walked.status.message is not None
    assert "waiting for the canary's pods (1/4 ready)" in walked.status.message


def test_the_analysis_starts_once_every_pod_is_ready(versions: dict[str, ModelVersion]) -> None:
    sim = at_fifty(versions, (4, 2))
    waiting = sim.step(5)
    assert waiting.status.analysis_run is None
    assert waiting.status.phase == "Progressing"
    assert waiting.intent.canary_weight == 50
    sim.canary_pods = (4, 4)
    started = sim.step(5)
    assert started.status.analysis_run is not None
    assert started.status.analysis_run.started_at == sim.now


def test_pods_not_ready_within_the_deadline_roll_back(versions: dict[str, ModelVersion]) -> None:
    sim = at_fifty(versions, (4, 3))
    assert sim.step(30).status.phase == "Progressing"
    assert sim.step(30).status.phase == "RolledBack"
    assert sim.status is not None
    assert sim.status.message is not None
    assert "canary pods not all ready within 60s of step 2/2 at 50% (3/4 ready)" in (
        sim.status.message
    )


def test_the_deadline_is_a_timer(versions: dict[str, ModelVersion]) -> None:
    """Nothing else may change while pods stay unready: the deadline must wake the operator."""
    sim = at_fifty(versions, (4, 3))
    waiting = sim.step(10)
    assert waiting.requeue_after == 50  # 60 s from the step's start, 10 s ago


def test_pods_lost_once_the_analysis_runs_do_not_stop_it(
    versions: dict[str, ModelVersion],
) -> None:
    sim = at_fifty(versions, (4, 4))
    assert sim.step(1).status.analysis_run is not None
    sim.canary_pods = (4, 3)
    measured = sim.step(1)
    assert measured.status.analysis_run is not None
    assert measured.status.analysis_run.canary_snapshot is not None


PAUSED = strategy({"setWeight": 50}, {"pause": {"duration": "30s"}}, progressDeadlineSeconds=60)


def weighted(versions: dict[str, ModelVersion], spec: Any = PAUSED) -> Sim:
    """v2 set to 50% beside 4 stable pods, its Deployment still at its old size (1 pod)."""
    sim = Sim(spec, versions, "iris-v1", spec={"replicas": 4})
    sim.step()
    sim.step(1)
    sim.target, sim.generation = "iris-v2", 2
    sim.step(1)
    sim.canary_pods = (1, 1)
    sim.step(1)
    return sim


def pausing(versions: dict[str, ModelVersion], spec: Any = PAUSED) -> Sim:
    """v2 at 50% beside 4 stable pods, its 4 pods ready: the pause has begun."""
    sim = weighted(versions, spec)
    sim.canary_pods = (4, 4)
    began = sim.step(1)
    assert began.status.step_ready_at == sim.now
    return sim


def test_a_pause_counts_from_when_the_pods_are_ready(versions: dict[str, ModelVersion]) -> None:
    sim = weighted(versions)
    sim.canary_pods = (4, 1)
    waiting = sim.step(25)
    assert waiting.requeue_after == 35  # the deadline: 60 s from the weight, 25 s ago
    sim.canary_pods = (4, 4)
    ready = sim.step(20)  # 45 s after the weight, more than the pause's 30
    assert ready.status.current_step_index == 1
    assert ready.requeue_after == 30
    assert sim.step(29).status.current_step_index == 1
    assert sim.step(1).status.current_step_index == 2


def test_a_pod_lost_during_a_pause_does_not_roll_back(versions: dict[str, ModelVersion]) -> None:
    """Past the progress deadline, a readiness blip or an HPA adding stable pods (so the
    canary wants more) must not end a sound rollout: the step passed its size check."""
    long_pause = strategy(
        {"setWeight": 50}, {"pause": {"duration": "1h"}}, progressDeadlineSeconds=60
    )
    sim = pausing(versions, long_pause)
    sim.canary_pods = (4, 3)
    assert sim.step(120).status.phase == "Progressing"
    sim.canary_pods = (4, 4)
    sim.spec = {"replicas": 6}  # more stable pods: the canary's size at 50% is 6
    assert sim.step(120).status.phase == "Progressing"


def test_a_manual_pause_is_not_rolled_back_by_a_blip(versions: dict[str, ModelVersion]) -> None:
    sim = pausing(versions, strategy({"setWeight": 50}, {"pause": {}}, progressDeadlineSeconds=60))
    sim.canary_pods = (4, 2)
    held = sim.step(600)
    assert held.status.phase == "Paused"
    assert held.requeue_after is None
