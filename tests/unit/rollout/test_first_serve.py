"""No stable yet: the target is served directly, or the reason it cannot be."""

from __future__ import annotations

from dataclasses import replace

import pytest

from coalmine.api.modelversion import ModelVersion
from coalmine.rollout.observation import VariantObservation
from coalmine.rollout.plan import plan, pods_summary
from tests.unit.rollout.sim import Sim, analysis, model_version, running, strategy


def conditions(sim: Sim) -> dict[str, str]:
    assert sim.status is not None
    return {c.type: c.status for c in sim.status.conditions}


def test_first_serve_is_not_a_canary(versions: dict[str, ModelVersion]) -> None:
    sim = Sim(strategy({"setWeight": 20}, analysis()), versions, "iris-v1")
    first = sim.step()
    assert first.status.phase == "Progressing"
    assert first.intent.stable_model_version == "iris-v1"
    assert first.intent.canary_model_version is None
    assert first.status.stable is not None
    assert first.status.stable.revision == first.status.latest_revision == 1
    assert conditions(sim) == {
        "Ready": "False",
        "Reconciling": "True",
        "Stalled": "False",
        "Progressing": "True",
        "Degraded": "False",
        "ModelVersionAvailable": "True",
    }
    ready = sim.step(3)
    assert ready.status.phase == "Healthy"
    assert ready.status.message == "serving v1 (revision 1)"
    assert conditions(sim)["Ready"] == "True"
    assert conditions(sim)["Reconciling"] == "False"
    assert [h.outcome for h in ready.status.history] == ["Promoted"]
    assert sim.reasons() == ["FirstRevision", "Serving"]
    assert ready.status.observed_generation == 1


def test_lasttransitiontime_kept_while_status_unchanged(versions: dict[str, ModelVersion]) -> None:
    sim = Sim(strategy(), versions, "iris-v1")
    sim.step()
    sim.step(1)
    assert sim.status is not None
    before = {c.type: c.last_transition_time for c in sim.status.conditions}
    sim.step(60)
    after = {c.type: c.last_transition_time for c in sim.status.conditions}
    assert before == after


@pytest.mark.parametrize(
    ("version", "reason", "stalled"),
    [
        (None, "ModelVersionNotFound", True),
        (
            model_version("iris-v1", phase="Invalid", message="sha256 mismatch"),
            "ModelVersionInvalid",
            True,
        ),
        (model_version("iris-v1", phase="Pending"), "WaitingForValidation", False),
    ],
)
def test_target_not_servable(version: ModelVersion | None, reason: str, stalled: bool) -> None:
    sim = Sim(strategy(), {"iris-v1": version} if version else {}, "iris-v1")
    result = sim.step()
    assert result.status.phase == "Pending"
    assert result.status.stable is None
    assert result.intent.stable_model_version is None
    got = {c.type: (c.status, c.reason) for c in result.status.conditions}
    assert got["Stalled"] == ("True" if stalled else "False", reason)
    assert got["Reconciling"][0] == ("False" if stalled else "True")
    assert got["Ready"][0] == "False"
    if version is not None and version.status and version.status.message:
        assert "sha256 mismatch" in (result.status.message or "")


def test_missing_strategy_blocks_first_serve(versions: dict[str, ModelVersion]) -> None:
    result = Sim(None, versions, "iris-v1").step()
    assert result.status.phase == "Pending"
    assert "RolloutStrategy canary not found" in (result.status.message or "")
    assert {c.type: c.status for c in result.status.conditions}["Stalled"] == "True"


def test_first_serve_waits_for_approval_when_required() -> None:
    unapproved = {"iris-v1": model_version("iris-v1")}
    sim = Sim(strategy(requireApproval=True), unapproved, "iris-v1")
    assert sim.step().status.phase == "Paused"
    assert sim.status is not None
    assert sim.status.stable is None
    sim.versions["iris-v1"] = model_version("iris-v1", approved=True)
    assert sim.step(1).intent.stable_model_version == "iris-v1"


def test_crash_looping_first_version_is_degraded(versions: dict[str, ModelVersion]) -> None:
    sim = Sim(strategy(maxCanaryRestarts=2), versions, "iris-v1")
    sim.step()
    obs = sim.observe()
    bad = running("iris-v1", ready=False, restarts=2, crash=True, message="coalmine-serve: boom")
    result = plan(sim.md, replace(obs, stable=bad))
    assert result.status.phase == "Degraded"
    assert "coalmine-serve: boom" in (result.status.message or "")
    assert result.intent.stable_model_version == "iris-v1"


def test_commands_before_first_serve_are_recorded_and_ignored(
    versions: dict[str, ModelVersion],
) -> None:
    sim = Sim(strategy(), versions, "iris-v1", commands={"promote": "t1"})
    result = sim.step()
    assert result.status.handled_commands == {"promote": "t1"}
    assert "CommandIgnored" in [e.reason for e in result.events]
    assert "CommandIgnored" not in [e.reason for e in sim.step(1).events]


@pytest.mark.parametrize(
    ("stable", "canary", "shown"),
    [
        (None, None, "0/0"),
        (running("iris-v1", replicas=3), None, "3/3"),
        (running("iris-v1", replicas=4, ready=False), None, "0/4"),
        (running("iris-v1", replicas=3), running("iris-v2", replicas=1), "3/3 + 1/1"),
        (running("iris-v1", replicas=3), running("iris-v2", replicas=0), "3/3"),
    ],
)
def test_the_pods_column_shows_ready_over_desired_per_variant(
    stable: VariantObservation | None, canary: VariantObservation | None, shown: str
) -> None:
    assert pods_summary(stable, canary) == shown


def test_status_carries_each_variants_desired_and_ready_pods(
    versions: dict[str, ModelVersion],
) -> None:
    sim = Sim(strategy({"setWeight": 20}, analysis()), versions, "iris-v1")
    sim.step()
    assert sim.stable_on is not None
    scaling = running(sim.stable_on[0], template_hash=sim.stable_on[1], replicas=4, ready=False)
    st = plan(sim.md, replace(sim.observe(), stable=scaling)).status
    assert st.stable is not None
    assert (st.stable.replicas, st.stable.ready_replicas, st.pods) == (4, 0, "0/4")
