"""Random step lists x analysis outcomes x commands x operator restarts keep the invariants.

Every reconcile in the simulation is also re-planned from the status it wrote (a
restart at that point), which must change nothing (see Sim.step). A `crash`
action additionally loses the apply: status was written, objects were not.
"""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from coalmine.api.deployment import Outcome
from coalmine.api.modelversion import ModelVersion
from coalmine.api.strategy import RolloutStrategySpec
from coalmine.rollout.plan import Plan
from tests.unit.rollout.sim import Sim, analysis, model_version, strategy

VERSIONS = ("iris-v1", "iris-v2", "iris-v3")


@st.composite
def step_lists(draw: st.DrawFn) -> RolloutStrategySpec:
    kinds = draw(
        st.lists(st.sampled_from(["weight", "pause", "timed", "analysis", "mirror"]), max_size=6)
    )
    weights = sorted(draw(st.lists(st.integers(0, 100), min_size=len(kinds), max_size=len(kinds))))
    steps: list[dict[str, Any]] = []
    for kind, weight in zip(kinds, weights, strict=True):
        if kind == "weight":
            steps.append({"setWeight": weight})
        elif kind == "pause":
            steps.append({"pause": {}})
        elif kind == "timed":
            steps.append({"pause": {"duration": draw(st.sampled_from(["5s", "30s"]))}})
        elif kind == "mirror":
            steps.append({"mirror": weight})
        else:
            limit = draw(st.none() | st.integers(0, 2))
            extra = {} if limit is None else {"inconclusiveLimit": limit}
            count = draw(st.integers(1, 3))
            steps.append(analysis(count, draw(st.integers(0, min(1, count - 1))), **extra))
    return strategy(
        *steps,
        maxCanaryRestarts=draw(st.integers(0, 3)),
        progressDeadlineSeconds=draw(st.sampled_from([30, 120])),
        requireApproval=draw(st.booleans()),
        scaleDownDelaySeconds=draw(st.sampled_from([0, 30])),
    )


ticks = st.tuples(
    st.just("tick"),
    st.sampled_from([1, 5, 10, 30]),
    st.sampled_from(["Successful", "Successful", "Successful", "Failed", "Inconclusive", "Error"]),
)
actions = st.one_of(
    ticks,
    ticks,
    ticks,
    st.tuples(
        st.just("command"), st.sampled_from(["promote", "abort", "retry", "undo"]), st.booleans()
    ),
    st.tuples(st.just("canary"), st.booleans(), st.integers(0, 4)),
    st.tuples(st.just("spec"), st.sampled_from(VERSIONS), st.none()),
    st.tuples(st.just("approve"), st.sampled_from(VERSIONS), st.none()),
    st.tuples(st.just("crash"), st.none(), st.none()),
)


def allowed_weight(spec: RolloutStrategySpec, index: int) -> int:
    if index >= len(spec.steps):
        return 100
    return max((s.set_weight or 0 for s in spec.steps[:index]), default=0)


def check(sim: Sim, before: Plan | None, result: Plan) -> None:
    status, intent = result.status, result.intent
    spec = sim.strategy
    assert spec is not None
    assert status.observed_generation == sim.generation
    if status.stable is not None and status.canary is not None:
        assert status.stable.weight + status.canary.weight == 100
    assert intent.canary_weight == (status.canary.weight if status.canary else 0)
    if status.phase == "RolledBack" or status.current_step_index is None:
        assert intent.canary_weight == 0
        assert intent.mirror == 0
    else:
        assert intent.canary_weight <= allowed_weight(spec, status.current_step_index)
    if intent.canary_weight > 0 and spec.require_approval:
        assert sim.versions[sim.target].approval
    if any(e.reason == "Promoted" for e in result.events):
        assert before is not None
        assert before.status.current_step_index == len(spec.steps)
        assert before.intent.canary_weight == 100
    flags = {c.type: c.status == "True" for c in status.conditions}
    assert sum(flags[t] for t in ("Ready", "Reconciling", "Stalled")) == 1
    assert flags["Ready"] == (status.phase == "Healthy")
    if status.phase in ("RolledBack", "Degraded"):
        assert flags["Stalled"]


@settings(max_examples=300, deadline=None)
@given(step_lists(), st.lists(actions, max_size=60))
def test_random_rollouts_keep_invariants(
    spec: RolloutStrategySpec, script: list[tuple[Any, ...]]
) -> None:
    versions: dict[str, ModelVersion] = {n: model_version(n) for n in VERSIONS}
    sim = Sim(spec, versions, "iris-v1")
    before = None
    tokens = 0
    prelude = [("approve", "iris-v1", None), ("tick", 1, None), ("spec", "iris-v2", None)]
    for action, a, b in [*prelude, *script]:
        lose_apply = False
        outcome: Outcome = b if action == "tick" else "Successful"
        if action == "command":
            tokens += 1
            sim.commands[a] = f"t{tokens}" + (" full" if b else "")
        elif action == "canary":
            sim.canary_ready, sim.canary_restarts = a, b
            sim.canary_crash = b > 0
        elif action == "spec":
            sim.target = a
            sim.generation += 1
        elif action == "approve":
            sim.versions[a] = model_version(a, approved=True)
        elif action == "crash":
            lose_apply = True
        stable_on, canary_on = sim.stable_on, sim.canary_on
        result = sim.step(a if action == "tick" else 1, outcome=outcome)
        if lose_apply:
            sim.stable_on, sim.canary_on = stable_on, canary_on
        check(sim, before, result)
        before = result
    for reason in ("Promoted", "RolledBack", "Aborted", "Superseded", "Undone", "AnalysisFailed"):
        if reason in sim.reasons():
            event(reason)
