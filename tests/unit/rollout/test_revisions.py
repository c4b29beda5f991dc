"""A revision is what serves: every change of the pods walks the strategy, scaling does not,
and a variant keeps serving what was pinned for it whatever happens to its ModelVersion."""

from __future__ import annotations

from typing import Any

import pytest

from coalmine.api.deployment import MODEL_VERSION_AVAILABLE, Pin
from coalmine.api.modelversion import ModelVersion
from coalmine.rollout.plan import Plan
from tests.unit.rollout.sim import Sim, model_version, strategy

PAUSED = strategy({"setWeight": 50}, {"pause": {}})


def healthy(versions: dict[str, ModelVersion], **spec: Any) -> Sim:
    sim = Sim(PAUSED, versions, "iris-v1", spec=dict(spec))
    sim.step()
    assert sim.step(1).status.phase == "Healthy"
    return sim


def stable_pin(result: Plan) -> Pin:
    assert result.intent.stable_pin is not None
    return result.intent.stable_pin


def condition(result: Plan, type_: str) -> tuple[str, str]:
    found = next(c for c in result.status.conditions if c.type == type_)
    return found.status, found.reason


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"resources": {"limits": {"memory": "64Mi"}}}, ["resources"]),
        ({"serving": {"maxBatchSize": 8}}, ["serving"]),
        ({"serving": {"image": "example/serving:2"}}, ["image"]),
        (
            {"resources": {"requests": {"cpu": "1"}}, "serving": {"workers": 2}},
            ["resources", "serving"],
        ),
    ],
)
def test_a_change_of_the_pods_is_a_canary_that_stops_at_the_pause(
    versions: dict[str, ModelVersion], change: dict[str, Any], expected: list[str]
) -> None:
    sim = healthy(versions)
    before = stable_pin(sim.plans[-1])
    sim.spec, sim.generation = change, 2
    started = sim.step(1)
    assert started.status.canary is not None
    assert started.status.canary.revision == 2
    assert started.status.canary.changes == expected
    assert started.status.canary.model_version == "iris-v1"
    assert stable_pin(started) == before, "stable pods keep their template"
    assert started.intent.canary_pin is not None
    assert started.intent.canary_pin.template_hash != before.template_hash
    started_event = next(e for e in started.events if e.reason == "RolloutStarted")
    assert f"({', '.join(expected)} changed;" in started_event.message
    paused = sim.until(lambda p: p.status.phase == "Paused")
    assert paused.intent.canary_weight == 50
    assert stable_pin(paused) == before
    sim.commands = {"promote": "t1"}
    done = sim.until(lambda p: p.status.phase == "Healthy")
    assert stable_pin(done) == started.intent.canary_pin
    assert done.status.stable is not None
    assert done.status.stable.changes == expected
    assert done.status.history[-1].changes == expected


def test_scaling_is_not_a_revision(versions: dict[str, ModelVersion]) -> None:
    sim = healthy(versions, replicas=2)
    before = stable_pin(sim.plans[-1])
    sim.spec, sim.generation = {"replicas": 5}, 2
    result = sim.step(1)
    assert result.status.canary is None
    assert result.status.phase == "Healthy"
    assert result.status.latest_revision == 1
    assert stable_pin(result) == before


def test_the_same_name_recreated_with_another_artifact_is_a_canary(
    versions: dict[str, ModelVersion],
) -> None:
    sim = healthy(versions)
    before = stable_pin(sim.plans[-1])
    sim.versions["iris-v1"] = model_version("iris-v1", uid="uid-again", sha256="1" * 64)
    result = sim.step(1)
    assert result.status.canary is not None
    assert result.status.canary.changes == ["artifact"]
    assert result.intent.canary_pin is not None
    assert result.intent.canary_pin.sha256 == "1" * 64
    assert stable_pin(result) == before, "stable keeps the validated digest"
    assert stable_pin(result).sha256 == "0" * 64
    assert condition(result, MODEL_VERSION_AVAILABLE) == ("False", "ModelVersionReplaced")
    assert [e.reason for e in result.events].count("ModelVersionReplaced") == 1


def test_a_stable_model_version_deleted_keeps_serving_and_says_so(
    versions: dict[str, ModelVersion],
) -> None:
    sim = healthy(versions)
    before = stable_pin(sim.plans[-1])
    assert condition(sim.plans[-1], MODEL_VERSION_AVAILABLE) == ("True", "ModelVersionPresent")
    original = sim.versions.pop("iris-v1")
    gone = sim.step(1)
    assert stable_pin(gone) == before
    assert condition(gone, MODEL_VERSION_AVAILABLE) == ("False", "ModelVersionDeleted")
    warnings = [e for e in gone.events if e.reason == "ModelVersionDeleted"]
    assert [e.type for e in warnings] == ["Warning"]
    assert "keep serving" in warnings[0].message
    later = sim.step(30)
    assert "ModelVersionDeleted" not in [e.reason for e in later.events]
    sim.versions["iris-v1"] = original
    back = sim.step(1)
    assert condition(back, MODEL_VERSION_AVAILABLE) == ("True", "ModelVersionPresent")
    assert back.status.canary is None


def test_a_rolled_back_change_is_not_retried_until_the_spec_changes(
    versions: dict[str, ModelVersion],
) -> None:
    sim = healthy(versions)
    sim.spec, sim.generation = {"resources": {"limits": {"memory": "8Mi"}}}, 2
    sim.step(1)
    sim.commands = {"abort": "a1"}
    aborted = sim.step(1)
    assert aborted.status.phase == "RolledBack"
    again = sim.step(30)
    assert again.status.phase == "RolledBack"
    assert again.status.latest_revision == 2
    sim.spec, sim.generation = {}, 3
    reverted = sim.step(1)
    assert reverted.status.phase == "Healthy", "the spec asks for what stable serves"
    assert reverted.status.aborted_revision is None


def test_a_change_during_a_rollout_supersedes_the_canary(
    versions: dict[str, ModelVersion],
) -> None:
    sim = healthy(versions)
    sim.target, sim.generation = "iris-v2", 2
    sim.until(lambda p: p.status.phase == "Paused")
    sim.spec, sim.generation = {"serving": {"workers": 2}}, 3
    result = sim.step(1)
    superseded = [e for e in result.events if e.reason == "Superseded"]
    assert len(superseded) == 1
    assert "serving changed" in superseded[0].message
    assert result.status.history[-1].outcome == "Superseded"


def test_a_template_the_operator_renders_differently_is_a_new_revision(
    versions: dict[str, ModelVersion],
) -> None:
    """An operator upgrade that changes the pod template rolls it out as a canary."""
    sim = healthy(versions)
    assert sim.status is not None
    assert sim.status.stable is not None
    assert sim.status.stable.pin is not None
    old = sim.status.stable.pin.model_copy(update={"template_hash": "from-an-old-operator"})
    sim.status.stable.pin = old
    sim.stable_on = ("iris-v1", "from-an-old-operator")
    result = sim.step(1)
    assert result.status.canary is not None
    assert result.status.canary.changes == ["template"]
    assert stable_pin(result) == old


def test_undo_serves_the_earlier_pin_and_refuses_when_its_version_is_gone(
    versions: dict[str, ModelVersion],
) -> None:
    sim = healthy(versions)
    first = stable_pin(sim.plans[-1])
    sim.target, sim.generation = "iris-v2", 2
    sim.until(lambda p: p.status.phase == "Paused")
    sim.commands = {"promote": "p1"}
    sim.until(lambda p: p.status.phase == "Healthy")
    sim.commands = {"promote": "p1", "undo": "u1"}
    undone = sim.step(1)
    assert undone.status.phase == "RolledBack"
    assert stable_pin(undone) == first
    sim2 = healthy(dict(versions))
    sim2.target, sim2.generation = "iris-v2", 2
    sim2.until(lambda p: p.status.phase == "Paused")
    sim2.commands = {"promote": "p1"}
    sim2.until(lambda p: p.status.phase == "Healthy")
    del sim2.versions["iris-v1"]
    sim2.commands = {"promote": "p1", "undo": "u1"}
    refused = sim2.step(1)
    assert [e.reason for e in refused.events] == ["UndoImpossible"]
    assert "no longer exists" in refused.events[0].message
    assert refused.status.phase == "Healthy"
