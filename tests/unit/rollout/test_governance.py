"""Approvals and command authors reach history and Events: the audit trail."""

from __future__ import annotations

from coalmine.api.governance import split_token, with_author
from coalmine.api.modelversion import ModelVersion
from coalmine.rollout.commands import is_full_promote, undo_revision
from tests.unit.rollout.sim import analysis, model_version, strategy
from tests.unit.rollout.test_commands import GATED, at_first_pause
from tests.unit.rollout.test_rollout import serving


def test_a_token_splits_into_options_and_author() -> None:
    assert split_token("ab12 full by=carol") == ("ab12 full", "carol")
    assert split_token("ab12") == ("ab12", None)
    assert split_token("ab12 by=") == ("ab12", None)
    assert split_token(with_author("n1", "system:serviceaccount:ml:ci")) == (
        "n1",
        "system:serviceaccount:ml:ci",
    )


def test_options_are_read_before_the_author_only() -> None:
    assert not is_full_promote("n1 by=x full")
    assert is_full_promote("n1 full by=x")
    assert undo_revision("n1 by=revision=3") is None
    assert undo_revision("n1 revision=3 by=dan") == 3


def test_promote_and_abort_authors_reach_history_and_events(
    versions: dict[str, ModelVersion],
) -> None:
    sim = at_first_pause(versions)
    sim.commands["promote"] = with_author("t1", "carol")
    promoted = sim.step(1)
    completed = [e.message for e in promoted.events if e.reason == "StepCompleted"]
    assert completed[0].endswith("completed by `coalmine promote`, by carol")
    assert [(c.command, c.by) for c in promoted.status.commands] == [("promote", "carol")]
    sim.commands["abort"] = with_author("t2", "dan")
    aborted = sim.step(1)
    entry = aborted.status.history[-1]
    assert entry.outcome == "Aborted"
    assert [(c.command, c.by) for c in entry.commands] == [("promote", "carol"), ("abort", "dan")]
    assert entry.commands[0].time < entry.commands[1].time
    assert "abort requested by dan" in (entry.reason or "")
    assert aborted.status.commands == []  # taken over by the entry


def test_a_token_without_author_is_recorded_without_one(
    versions: dict[str, ModelVersion],
) -> None:
    sim = at_first_pause(versions)
    sim.commands["abort"] = "t3"
    entry = sim.step(1).status.history[-1]
    assert [(c.command, c.by) for c in entry.commands] == [("abort", None)]
    assert entry.reason == "abort requested with `coalmine abort`"


def test_retry_and_undo_name_their_authors(versions: dict[str, ModelVersion]) -> None:
    sim = at_first_pause(versions)
    sim.commands["abort"] = with_author("a", "dan")
    sim.step(1)
    sim.commands["retry"] = with_author("r", "erin")
    retried = sim.step(1)
    assert "retrying iris-v2 as a new revision by erin" in [e.message for e in retried.events]
    sim.commands["promote"] = with_author("p full", "carol full")
    phases = [sim.step(1) for _ in range(6)]
    done = phases[-1]
    assert done.status.phase == "Healthy", [(p.status.phase, p.status.message) for p in phases]
    entry = done.status.history[-1]
    assert (entry.version, entry.outcome) == ("v2", "Promoted")
    assert [(c.command, c.by) for c in entry.commands] == [
        ("retry", "erin"),
        ("promote", "carol full"),  # a name with a space stays whole; it is no option
    ]
    assert done.status.stable is not None
    assert done.status.stable.version == "v2"
    sim.commands["undo"] = with_author("u", "frank")
    undone = sim.step(1).status.history
    assert undone[-2].outcome == "RolledBack"
    assert undone[-2].reason == "undone to revision 1 by frank"
    assert [(c.command, c.by) for c in undone[-2].commands] == [("undo", "frank")]


def test_the_approval_is_announced_once_and_recorded(versions: dict[str, ModelVersion]) -> None:
    spec = strategy({"setWeight": 50}, requireApproval=True)
    approved = {**versions, "iris-v1": model_version("iris-v1", approved=True)}
    sim = serving(approved, spec)
    sim.step(1)
    waiting = sim.step(1)
    assert waiting.status.phase == "Paused"
    assert "coalmine approve iris-v2" in (waiting.status.message or "")
    sim.versions["iris-v2"] = model_version("iris-v2", approved="grace", groups="ml-leads")
    first = sim.step(1)
    announced = [e.message for e in first.events if e.reason == "Approved"]
    assert announced == ["v2 approved by grace (groups ml-leads)"]
    assert first.status.canary is not None
    assert first.status.canary.approval is not None
    assert first.status.canary.approval.by == "grace"
    later = [sim.step(1) for _ in range(4)]
    assert all("Approved" not in [e.reason for e in r.events] for r in later)
    promoted = [e.message for r in later for e in r.events if e.reason == "Promoted"]
    assert promoted == ["promoted v2 (revision 2) to stable, approved by grace (groups ml-leads)"]
    entry = later[-1].status.history[-1]
    assert entry.outcome == "Promoted"
    assert entry.approval is not None
    assert (entry.approval.by, entry.approval.groups) == (
        "grace",
        ["ml-leads"],
    )


def test_approver_groups_count_only_a_matching_approval(
    versions: dict[str, ModelVersion],
) -> None:
    leads = {**versions, "iris-v1": model_version("iris-v1", approved="judy", groups="ml-leads")}
    sim = serving(leads, strategy({"setWeight": 50}, approverGroups=["ml-leads"]))
    sim.versions["iris-v2"] = model_version("iris-v2", approved="heidi", groups="dev")
    sim.step(1)
    waiting = sim.step(1)
    assert waiting.status.phase == "Paused"
    assert waiting.intent.canary_weight == 0
    assert "from a member of ml-leads" in (waiting.status.message or "")
    sim.versions["iris-v2"] = model_version("iris-v2", approved="ivan", groups="dev,ml-leads")
    assert sim.step(1).intent.canary_weight > 0


def test_history_keeps_the_last_verdict_with_its_figures(
    versions: dict[str, ModelVersion],
) -> None:
    sim = serving(versions, strategy(analysis(count=1)))
    for _ in range(8):
        result = sim.step(10, outcome="Failed")
    entry = result.status.history[-1]
    assert entry.outcome == "RolledBack"
    assert entry.analysis is not None
    assert entry.analysis.outcome == "Failed"
    assert entry.analysis.revision == entry.revision
    assert [m.name for m in entry.analysis.metrics] == ["errorRate"]
    assert entry.analysis.metrics[0].value is not None


def test_unused_gate_keeps_commands_for_the_next_entry(versions: dict[str, ModelVersion]) -> None:
    sim = serving(versions, GATED)
    sim.step(1)
    sim.step(1)
    sim.commands["promote"] = with_author("q", "carol")
    assert [c.by for c in sim.step(1).status.commands] == ["carol"]
