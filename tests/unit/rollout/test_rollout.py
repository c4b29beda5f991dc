"""A new revision walks its steps: every step kind, promotion, and every way to roll back."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from coalmine.api.modelversion import ModelVersion
from coalmine.api.strategy import RolloutStrategySpec
from coalmine.rollout.plan import Plan, measurement_due, plan
from tests.unit.rollout.sim import Sim, analysis, model_version, running, strategy


def serving(
    versions: dict[str, ModelVersion], spec: RolloutStrategySpec | None, **kw: object
) -> Sim:
    """v1 Healthy, then spec moves to v2."""
    sim = Sim(spec, versions, "iris-v1", **kw)  # type: ignore[arg-type]
    sim.step()
    sim.step(1)
    assert sim.status is not None
    assert sim.status.phase == "Healthy"
    sim.target, sim.generation = "iris-v2", 2
    return sim


def cond(result: Plan) -> dict[str, str]:
    return {c.type: c.status for c in result.status.conditions}


def test_new_revision_starts_a_canary_at_weight_zero(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy({"setWeight": 20}))
    result = sim.step(1)
    assert result.status.phase == "Progressing"
    assert result.status.canary is not None
    assert result.status.canary.revision == 2
    assert result.status.canary.weight == 0
    assert result.status.rollout_started_at == sim.now
    assert result.intent.canary_model_version == "iris-v2"
    assert result.intent.stable_model_version == "iris-v1"
    assert result.intent.canary_weight == 0
    assert result.requeue_after == 600
    assert "RolloutStarted" in [e.reason for e in result.events]


def test_full_walk_to_promotion(versions: dict[str, ModelVersion]) -> None:
    spec = strategy(
        {"mirror": 50},
        {"setWeight": 20},
        analysis(count=2),
        {"setWeight": 50},
        {"pause": {"duration": "30s"}},
        scaleDownDelaySeconds=60,
    )
    sim = serving(versions, spec)
    sim.step(1)
    walked = sim.step(1)  # canary ready: mirror + 20% complete at once, analysis starts
    assert walked.status.current_step_index == 2
    assert walked.intent.canary_weight == 20
    assert walked.intent.mirror == 50
    assert walked.status.analysis_run is not None
    assert walked.requeue_after == 0  # the window's first scrape is due now
    baseline = sim.step(1)
    assert baseline.status.analysis_run is not None
    assert baseline.status.analysis_run.canary_snapshot is not None
    assert baseline.status.analysis_run.measurements == 0
    assert baseline.requeue_after == 10
    assert sim.step(5).status.analysis_run.measurements == 0  # type: ignore[union-attr]
    one = sim.step(5)
    assert one.status.analysis_run is not None
    assert one.status.analysis_run.successes == 1
    two = sim.step(10)
    assert two.status.current_step_index == 4
    assert two.intent.canary_weight == 50
    assert two.requeue_after == 30
    promoting = sim.step(30)
    assert promoting.intent.stable_model_version == "iris-v2"
    assert promoting.intent.canary_weight == 100
    assert promoting.status.stable is not None
    assert promoting.status.stable.model_version == "iris-v1"  # until stable has rolled
    assert promoting.status.phase == "Progressing"
    done = sim.step(1)
    assert done.status.phase == "Healthy"
    assert done.status.stable is not None
    assert done.status.stable.model_version == "iris-v2"
    assert done.status.stable.revision == 2
    assert done.intent.canary_weight == 0
    assert done.intent.canary_model_version == "iris-v2"
    assert done.status.canary_scale_down_at == sim.now + timedelta(seconds=60)
    assert done.status.history[-1].outcome == "Promoted"
    assert cond(done)["Ready"] == "True"
    assert done.requeue_after == 60
    gone = sim.step(60)
    assert gone.status.canary is None
    assert gone.intent.canary_model_version is None
    assert sim.reasons().count("StepCompleted") == 5
    assert sim.reasons()[-2:] == ["Promoted", "CanaryRemoved"]


def test_no_steps_promotes_once_canary_ready(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy())
    sim.step(1)
    assert sim.step(1).intent.canary_weight == 100
    assert sim.step(1).status.phase == "Healthy"


def test_pause_without_duration_waits_for_promote(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy({"setWeight": 10}, {"pause": {}}, {"setWeight": 40}))
    sim.step(1)
    paused = sim.step(1)
    assert paused.status.phase == "Paused"
    assert "coalmine promote" in (paused.status.message or "")
    assert paused.requeue_after is None
    assert cond(paused)["Reconciling"] == "True"
    assert cond(paused)["Stalled"] == "False"
    assert sim.step(3600).status.phase == "Paused"
    sim.commands["promote"] = "tok-1"
    resumed = sim.step(1)
    assert resumed.intent.canary_weight == 100  # 40% done, then promotion starts
    assert resumed.status.handled_commands["promote"] == "tok-1"


def test_deadline_rolls_back_a_canary_that_never_gets_ready(
    versions: dict[str, ModelVersion],
) -> None:
    sim = serving(
        versions, strategy({"setWeight": 20}, progressDeadlineSeconds=60), canary_ready=False
    )
    sim.step(1)
    assert sim.step(59).status.phase == "Progressing"
    rolled = sim.step(1)
    assert rolled.status.phase == "RolledBack"
    assert "not ready within 60s (0/1 ready)" in (rolled.status.message or "")
    assert rolled.intent.canary_weight == 0
    assert rolled.status.aborted_revision == 2
    assert rolled.status.history[-1].outcome == "RolledBack"


def test_crash_loop_rolls_back_before_the_deadline(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy({"setWeight": 20}, maxCanaryRestarts=2), canary_ready=False)
    sim.step(1)
    sim.canary_restarts, sim.canary_crash = 1, True
    assert sim.step(5).status.phase == "Progressing"
    sim.canary_restarts = 2
    rolled = sim.step(5)
    assert rolled.status.phase == "RolledBack"
    assert "crash-looping: 2 restarts (limit 2)" in (rolled.status.message or "")


def test_crash_loop_during_steps_rolls_back(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy({"setWeight": 20}, {"pause": {}}, maxCanaryRestarts=0))
    sim.step(1)
    assert sim.step(1).intent.canary_weight == 20
    sim.canary_restarts = 1
    rolled = sim.step(1)
    assert rolled.status.phase == "RolledBack"
    assert rolled.intent.canary_weight == 0


@pytest.mark.parametrize(("failure_limit", "failures_to_rollback"), [(0, 1), (1, 2)])
def test_analysis_failures_beyond_limit_roll_back(
    versions: dict[str, ModelVersion], failure_limit: int, failures_to_rollback: int
) -> None:
    spec = strategy({"setWeight": 20}, analysis(count=5, failure_limit=failure_limit))
    sim = serving(versions, spec)
    sim.step(1)
    sim.step(1)
    sim.step(1)  # baseline
    for _ in range(failures_to_rollback - 1):
        assert sim.step(10, outcome="Failed").status.phase == "Progressing"
    rolled = sim.step(10, outcome="Failed")
    assert rolled.status.phase == "RolledBack"
    assert rolled.status.message == (
        f"revision 2 (v2) rolled back: analysis failed ({failures_to_rollback} failed"
        f" measurements, limit {failure_limit}): errorRate 0.31 > max 0.05 (canary), 0.00 stable"
    )
    assert rolled.intent.canary_weight == 0
    assert rolled.status.canary is not None
    assert rolled.status.canary.weight == 0
    assert cond(rolled) == {
        "Ready": "False",
        "Reconciling": "False",
        "Stalled": "True",
        "Progressing": "False",
        "Degraded": "True",
        "ModelVersionAvailable": "True",
    }
    assert [e.type for e in rolled.events if e.reason == "RolledBack"] == ["Warning"]
    assert rolled.status.last_analysis is not None
    assert rolled.status.last_analysis.outcome == "Failed"


def test_rolled_back_canary_scales_to_zero_after_delay_and_is_not_retried(
    versions: dict[str, ModelVersion],
) -> None:
    spec = strategy({"setWeight": 20}, analysis(), abortScaleDownDelaySeconds=20)
    sim = serving(versions, spec)
    sim.step(1)
    sim.step(1)
    sim.step(1)
    rolled = sim.step(10, outcome="Failed")
    assert rolled.intent.canary_replicas_zero is False
    assert rolled.requeue_after == 20
    later = sim.step(20)
    assert later.intent.canary_replicas_zero is True
    assert later.intent.canary_model_version == "iris-v2"
    assert later.status.phase == "RolledBack"
    assert later.events == ()
    assert sim.step(3600).status.latest_revision == 2  # the same revision is not retried


def test_inconclusive_holds_and_never_fails(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy({"setWeight": 20}, analysis(count=1)))
    sim.step(1)
    sim.step(1)
    sim.step(1)
    for _ in range(20):
        held = sim.step(10, outcome="Inconclusive")
        assert held.status.phase == "Progressing"
    assert held.status.analysis_run is not None
    assert held.status.analysis_run.inconclusive == 20
    assert sim.step(10).intent.canary_weight == 100


def test_an_analysis_without_conclusive_data_ends_at_the_progress_deadline(
    versions: dict[str, ModelVersion],
) -> None:
    """No traffic, or no ready canary pod to scrape: the step cannot hang."""
    spec = strategy({"setWeight": 20}, analysis(count=2), progressDeadlineSeconds=60)
    sim = serving(versions, spec)
    sim.step(1)
    sim.step(1)
    sim.step(1)
    for _ in range(5):
        assert sim.step(10, outcome="Inconclusive").status.phase == "Progressing"
    ended = sim.step(10, outcome="Inconclusive")
    assert ended.status.phase == "RolledBack"
    assert ended.status.message is not None
    assert "analysis made no progress for 60s (progress deadline)" in ended.status.message
    assert "0/2 conclusive, 6 inconclusive" in ended.status.message
    assert "too little traffic" in ended.status.message
    assert ended.intent.canary_weight == 0


def test_the_deadline_of_an_analysis_runs_only_while_an_operator_can_act(
    versions: dict[str, ModelVersion],
) -> None:
    """An API-server outage or a failover measures nothing: that is not the canary's fault."""
    spec = strategy({"setWeight": 20}, analysis(count=2), progressDeadlineSeconds=60)
    sim = serving(versions, spec)
    sim.step(1)
    sim.step(1)
    sim.step(1)
    sim.now += timedelta(seconds=90)  # nobody could reconcile: the API server was down
    sim.watching_since = sim.now  # a replica takes the lease once it is back
    for _ in range(5):
        assert sim.step(10, outcome="Inconclusive").status.phase == "Progressing"
    ended = sim.step(10, outcome="Inconclusive")
    assert ended.status.phase == "RolledBack"  # one full deadline after it could act again
    assert ended.status.message is not None
    assert "analysis made no progress for 60s" in ended.status.message


def test_the_readiness_deadline_runs_only_while_an_operator_can_act(
    versions: dict[str, ModelVersion],
) -> None:
    sim = serving(
        versions, strategy({"setWeight": 20}, progressDeadlineSeconds=60), canary_ready=False
    )
    sim.step(1)
    sim.now += timedelta(seconds=120)
    sim.watching_since = sim.now
    waiting = sim.step(0)
    assert waiting.status.phase == "Progressing"
    assert waiting.requeue_after == 60  # the deadline, counted from the takeover
    assert sim.step(59).status.phase == "Progressing"
    rolled = sim.step(1)
    assert rolled.status.phase == "RolledBack"
    assert "not ready within 60s" in (rolled.status.message or "")


def test_a_long_analysis_that_keeps_measuring_is_not_cut_by_the_deadline(
    versions: dict[str, ModelVersion],
) -> None:
    """count x interval may exceed the deadline: each conclusive measurement is progress."""
    spec = strategy({"setWeight": 20}, analysis(count=12), progressDeadlineSeconds=60)
    sim = serving(versions, spec)
    sim.step(1)
    sim.step(1)
    sim.step(1)
    for _ in range(11):
        assert sim.step(10).status.phase == "Progressing"
    assert sim.step(10).intent.canary_weight == 100


def test_inconclusive_limit_pauses_for_a_human(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy({"setWeight": 20}, analysis(inconclusiveLimit=1)))
    sim.step(1)
    sim.step(1)
    sim.step(1)
    sim.step(10, outcome="Inconclusive")
    paused = sim.step(10, outcome="Error")
    assert paused.status.phase == "Paused"
    assert paused.status.last_analysis is not None
    assert paused.status.last_analysis.outcome == "Error"
    assert "AnalysisError" in [e.reason for e in paused.events]
    assert measurement_due(sim.md, sim.strategy, sim.now + timedelta(hours=1)) is None
    sim.commands["promote"] = "go"
    assert sim.step(1).intent.canary_weight == 100


def test_measurement_counts_once(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy({"setWeight": 20}, analysis(count=3)))
    sim.step(1)
    sim.step(1)
    sim.step(1)
    obs = sim.observe()
    obs = replace(obs, now=obs.now + timedelta(seconds=10))
    sim.now = obs.now
    obs = sim.observe("Successful")
    first = plan(sim.md, obs)
    assert first.status.analysis_run is not None
    assert first.status.analysis_run.successes == 1
    again = plan(sim.md.model_copy(update={"status": first.status}), obs)
    assert again.status.analysis_run == first.status.analysis_run


def test_require_approval_pauses_before_weight(versions: dict[str, ModelVersion]) -> None:
    spec = strategy({"mirror": 10}, {"setWeight": 20}, requireApproval=True)
    approved = {**versions, "iris-v1": model_version("iris-v1", approved=True)}
    sim = serving(approved, spec)
    sim.step(1)
    paused = sim.step(1)
    assert paused.status.phase == "Paused"
    assert paused.intent.canary_weight == 0
    assert paused.intent.mirror == 10  # shadow traffic is not client traffic
    assert "coalmine.dev/approved-by" in (paused.status.message or "")
    sim.commands["promote"] = "x"
    blocked = sim.step(1)
    assert blocked.intent.canary_weight == 0
    assert "PromoteBlocked" in [e.reason for e in blocked.events]
    sim.versions["iris-v2"] = model_version("iris-v2", approved=True)
    assert sim.step(1).intent.canary_weight == 100


def test_missing_strategy_mid_rollout_holds(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy({"setWeight": 20}, {"pause": {}}))
    sim.step(1)
    sim.step(1)
    sim.strategy = None
    held = sim.step(1)
    assert held.status.phase == "Paused"
    assert held.intent.canary_weight == 20
    assert cond(held)["Stalled"] == "True"


def test_missing_strategy_blocks_new_revision(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy())
    sim.strategy = None
    result = sim.step(1)
    assert result.status.phase == "Degraded"
    assert result.intent.canary_model_version is None
    assert result.intent.stable_model_version == "iris-v1"


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (None, "ModelVersionNotFound"),
        (model_version("iris-v2", phase="Invalid"), "ModelVersionInvalid"),
    ],
)
def test_unservable_target_keeps_stable_serving(
    versions: dict[str, ModelVersion], target: ModelVersion | None, reason: str
) -> None:
    sim = serving(versions, strategy({"setWeight": 20}))
    if target is None:
        del sim.versions["iris-v2"]
    else:
        sim.versions["iris-v2"] = target
    result = sim.step(1)
    assert result.status.phase == "Degraded"
    assert result.intent.stable_model_version == "iris-v1"
    assert result.intent.canary_model_version is None
    assert {c.type: c.reason for c in result.status.conditions}["Stalled"] == reason


def test_target_deleted_mid_rollout_rolls_back(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy({"setWeight": 20}, {"pause": {}}))
    sim.step(1)
    sim.step(1)
    del sim.versions["iris-v2"]
    assert sim.step(1).status.phase == "RolledBack"


def test_spec_change_supersedes_the_canary(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy({"setWeight": 20}, {"pause": {}}))
    sim.step(1)
    sim.step(1)
    sim.target, sim.generation = "iris-v3", 3
    result = sim.step(1)
    assert result.status.canary is not None
    assert result.status.canary.model_version == "iris-v3"
    assert result.status.canary.revision == 3
    assert result.intent.canary_weight == 0
    assert [h.outcome for h in result.status.history] == ["Promoted", "Superseded"]
    assert [e.reason for e in result.events][:2] == ["Superseded", "RolloutStarted"]


def test_spec_back_to_stable_cancels_the_rollout(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy({"setWeight": 20}, {"pause": {}}))
    sim.step(1)
    sim.step(1)
    sim.target = "iris-v1"
    result = sim.step(1)
    assert result.status.phase == "Healthy"
    assert result.intent.canary_weight == 0
    assert result.status.history[-1].outcome == "Superseded"


def test_changing_spec_after_rollback_starts_a_new_revision(
    versions: dict[str, ModelVersion],
) -> None:
    sim = serving(versions, strategy({"setWeight": 20}), canary_ready=False)
    sim.step(1)
    assert sim.step(600).status.phase == "RolledBack"
    sim.target, sim.canary_ready = "iris-v3", True
    result = sim.step(1)
    assert result.status.canary is not None
    assert result.status.canary.revision == 3
    assert result.status.aborted_revision is None


def test_history_is_trimmed(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy(), history_limit=2)
    for target in ("iris-v2", "iris-v3", "iris-v1", "iris-v2"):
        sim.target = target
        sim.until(lambda p: p.status.phase == "Healthy" and p.status.canary is None, seconds=30)
    assert sim.status is not None
    assert [h.revision for h in sim.status.history] == [4, 5]


def test_history_limit_zero_keeps_none(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy(), history_limit=0)
    assert sim.status is not None
    assert sim.status.history == []


def test_stable_not_ready_in_steady_state_is_progressing(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy())
    sim.target = "iris-v1"
    obs = replace(sim.observe(), stable=running("iris-v1", ready=False))
    result = plan(sim.md, obs)
    assert result.status.phase == "Progressing"
    assert cond(result)["Ready"] == "False"


def test_huge_termination_message_is_clipped(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, strategy({"setWeight": 20}, maxCanaryRestarts=0))
    sim.step(1)
    obs = replace(
        sim.observe(), canary=running("iris-v2", ready=False, restarts=1, message="x" * 5000)
    )
    result = plan(sim.md, obs)
    assert result.status.phase == "RolledBack"
    assert len(result.status.message or "") == 4096
    assert all(len(e.message) <= 1024 for e in result.events)
    type(result.status).model_validate(result.status.to_json())
