"""promote, abort, retry and undo: each token acts once."""

from __future__ import annotations

from coalmine.api.modelversion import ModelVersion
from tests.unit.rollout.sim import Sim, strategy
from tests.unit.rollout.test_rollout import serving

GATED = strategy({"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}})


def at_first_pause(versions: dict[str, ModelVersion]) -> Sim:
    sim = serving(versions, GATED)
    sim.step(1)
    assert sim.step(1).status.phase == "Paused"
    return sim


def test_promote_completes_only_the_current_step(versions: dict[str, ModelVersion]) -> None:
    sim = at_first_pause(versions)
    sim.commands["promote"] = "a"
    result = sim.step(1)
    assert result.status.phase == "Paused"
    assert result.intent.canary_weight == 50
    assert result.status.current_step_index == 3
    assert sim.step(1).events == ()  # the same token does not act twice


def test_promote_full_skips_every_step(versions: dict[str, ModelVersion]) -> None:
    sim = at_first_pause(versions)
    sim.commands["promote"] = "b full"
    assert sim.step(1).intent.canary_weight == 100
    assert sim.step(1).status.phase == "Healthy"


def test_promote_without_rollout_is_ignored(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, GATED)
    sim.target = "iris-v1"
    sim.commands["promote"] = "c"
    result = sim.step(1)
    assert [e.reason for e in result.events] == ["CommandIgnored"]
    assert result.status.handled_commands["promote"] == "c"


def test_abort_rolls_back_at_once(versions: dict[str, ModelVersion]) -> None:
    sim = at_first_pause(versions)
    sim.commands.update(abort="d", promote="e")
    result = sim.step(1)
    assert result.status.phase == "RolledBack"
    assert result.intent.canary_weight == 0
    assert result.status.history[-1].outcome == "Aborted"
    assert "abort requested" in (result.status.message or "")
    assert "CommandIgnored" in [e.reason for e in result.events]  # promote came too late


def test_retry_starts_a_new_revision(versions: dict[str, ModelVersion]) -> None:
    sim = at_first_pause(versions)
    sim.commands["abort"] = "f"
    sim.step(1)
    assert sim.step(100).status.latest_revision == 2
    sim.commands["retry"] = "g"
    sim.canary_ready = False  # scaled to zero after the rollback
    result = sim.step(1)
    assert result.status.canary is not None
    assert result.status.canary.revision == 3
    assert result.status.canary.weight == 0
    assert result.status.phase == "Progressing"
    assert result.status.rollout_started_at == sim.now
    assert result.status.aborted_revision is None
    assert result.intent.canary_replicas_zero is False


def test_retry_with_nothing_rolled_back_is_ignored(versions: dict[str, ModelVersion]) -> None:
    sim = at_first_pause(versions)
    sim.commands["retry"] = "h"
    assert [e.reason for e in sim.step(1).events] == ["CommandIgnored"]


def test_undo_during_rollout_is_an_abort(versions: dict[str, ModelVersion]) -> None:
    sim = at_first_pause(versions)
    sim.commands["undo"] = "i"
    result = sim.step(1)
    assert result.status.phase == "RolledBack"
    assert result.status.history[-1].outcome == "Aborted"


def promoted_v2(versions: dict[str, ModelVersion]) -> Sim:
    sim = serving(versions, strategy())
    sim.until(lambda p: p.status.phase == "Healthy" and p.status.canary is None, seconds=30)
    return sim


def test_undo_returns_to_the_previous_stable(versions: dict[str, ModelVersion]) -> None:
    sim = promoted_v2(versions)
    sim.commands["undo"] = "j"
    result = sim.step(1)
    assert result.status.phase == "RolledBack"
    assert result.status.stable is not None
    assert result.status.stable.model_version == "iris-v1"
    assert result.status.stable.revision == 3
    assert result.intent.stable_model_version == "iris-v1"
    assert result.intent.canary_model_version is None
    assert result.status.aborted_model_version == "iris-v2"
    assert [h.outcome for h in result.status.history][-2:] == ["RolledBack", "Promoted"]
    assert "Undone" in [e.reason for e in result.events]
    assert sim.step(3600).status.phase == "RolledBack"  # spec still says v2: not retried
    sim.commands["retry"] = "k"
    again = sim.step(1)
    assert again.status.canary is not None
    assert again.status.canary.model_version == "iris-v2"
    assert again.status.canary.revision == 4


def test_undo_to_a_named_revision(versions: dict[str, ModelVersion]) -> None:
    sim = promoted_v2(versions)
    sim.target = "iris-v3"
    sim.until(lambda p: p.status.phase == "Healthy" and p.status.canary is None, seconds=30)
    sim.commands["undo"] = "l revision=1"
    result = sim.step(1)
    assert result.status.stable is not None
    assert result.status.stable.model_version == "iris-v1"


def test_undo_without_history_is_refused(versions: dict[str, ModelVersion]) -> None:
    sim = promoted_v2(versions)
    sim.commands["undo"] = "m revision=7"
    result = sim.step(1)
    assert [e.reason for e in result.events] == ["UndoImpossible"]
    assert result.status.phase == "Healthy"


def test_spec_change_after_undo_rolls_out_normally(versions: dict[str, ModelVersion]) -> None:
    sim = promoted_v2(versions)
    sim.commands["undo"] = "n"
    sim.step(1)
    sim.target = "iris-v1"
    assert sim.step(1).status.phase == "Healthy"
