"""The rollout state machine's entry points: `plan` decides, `measurement_due` schedules.

`plan(md, obs)` is pure: the same resource and observation give the same plan,
and the status it returns is all the memory there is. Re-planning from that
status with the same observation changes nothing and emits nothing, so a
restarted operator continues wherever the last one stopped.
"""

from __future__ import annotations

from datetime import datetime

from coalmine.analysis.verdict import Measurement
from coalmine.api.conditions import set_condition
from coalmine.api.deployment import ModelDeployment
from coalmine.api.modelversion import ModelVersion
from coalmine.api.monitoring import MONITORED
from coalmine.monitoring.checks import checks_for, next_due
from coalmine.monitoring.decide import Monitored, monitor
from coalmine.rollout import reasons
from coalmine.rollout.conditions import conditions
from coalmine.rollout.decision import Event, Intent, Plan
from coalmine.rollout.draft import Draft
from coalmine.rollout.machine import decide
from coalmine.rollout.observation import Observation, VariantObservation
from coalmine.rollout.record import update_record
from coalmine.rollout.revision import runs
from coalmine.rollout.schedule import measurement_due, requeue_after

__all__ = ["Event", "Intent", "Measurement", "Plan", "measurement_due", "plan"]


def plan(md: ModelDeployment, obs: Observation) -> Plan:
    """Decide the next status, what should run, and the events of this reconcile."""
    d = Draft.start(md, obs)
    decide(d)
    d.note_approval()
    _retire_canary(d)
    _release_floor(d)
    for name in sorted(d.commands):
        d.emit(
            "Normal", reasons.COMMAND_IGNORED, f"{name}: nothing to do in phase {d.status.phase}"
        )
    st = d.status
    _set_weights_and_readiness(d)
    update_record(md.status, d)
    limit = md.spec.revision_history_limit
    st.history = st.history[-limit:] if limit else []
    st.observed_generation = md.metadata.generation
    st.conditions = conditions(d)
    watched = _monitor(d)
    return Plan(
        status=st,
        intent=_intent(d),
        events=tuple(d.events),
        requeue_after=_sooner(
            requeue_after(st, obs.strategy, obs.now, obs.watching_since),
            next_due(md.model_copy(update={"status": st})) if obs.serving() else None,
            obs.now,
        ),
        notifications=tuple(watched.notifications),
    )


def monitored_version(md: ModelDeployment, obs: Observation) -> ModelVersion | None:
    """The ModelVersion whose reference decides the default checks: the stable one's."""
    name = md.status.stable.model_version if md.status and md.status.stable else None
    return obs.model_versions.get(name) if name else obs.target


def _monitor(d: Draft) -> Monitored:
    """Day-2 checks (monitoring/): their states, the ModelHealthy condition, their Events."""
    md, obs, st = d.md, d.obs, d.status
    checks = checks_for(md, monitored_version(md, obs))
    watched = monitor(md, checks, obs.monitoring, obs.model_versions, obs.now)
    st.monitoring = watched.status
    for type_, reason, message in watched.events:
        d.emit(type_, reason, message)
    if watched.health is None:
        st.conditions = [c for c in st.conditions if c.type != MONITORED]
    else:
        h = watched.health
        st.conditions = set_condition(
            st.conditions, MONITORED, h.status, h.reason, h.message, obs.now, md.metadata.generation
        )
    return watched


def _sooner(seconds: float | None, at: datetime | None, now: datetime) -> float | None:
    if at is None:
        return seconds
    until = max(0.0, (at - now).total_seconds())
    return until if seconds is None else min(seconds, until)


def _retire_canary(d: Draft) -> None:
    """A promoted or superseded canary is forgotten once its delay passed; a rolled-back one
    stays listed (at zero replicas) so `kubectl get` shows what was rejected."""
    st = d.status
    if d.in_rollout or st.canary is None or st.canary_scale_down_at is None:
        return
    if d.now < st.canary_scale_down_at or st.canary.revision == st.aborted_revision:
        return
    d.emit("Normal", reasons.CANARY_REMOVED, f"canary {st.canary.version} scaled down")
    st.canary = None
    st.canary_scale_down_at = None


def _release_floor(d: Draft) -> None:
    """The HPA's floor after a rollout goes once its scale-down window has passed, or at once
    when autoscaling is off."""
    st = d.status
    if st.stable_floor is None and st.stable_floor_until is None:
        return
    until = st.stable_floor_until
    if d.md.spec.autoscaling is None or until is None or d.now >= until:
        st.stable_floor = st.stable_floor_until = None


def _set_weights_and_readiness(d: Draft) -> None:
    st, obs = d.status, d.obs
    if st.stable is not None:
        st.stable.weight = 100 - (st.canary.weight if st.canary else 0)
        st.stable.replicas = obs.stable.replicas if obs.stable else None
        st.stable.ready_replicas = obs.stable.ready_replicas if obs.stable else None
    if st.canary is not None:
        st.canary.replicas = obs.canary.replicas if obs.canary else None
        st.canary.ready_replicas = obs.canary.ready_replicas if obs.canary else None
    st.pods = pods_summary(obs.stable, obs.canary)


def pods_summary(stable: VariantObservation | None, canary: VariantObservation | None) -> str:
    """Ready/desired pods as `kubectl get` shows them: stable's, then the canary's while it
    has or wants any (an HPA's scaling shows as stable's desired count moves)."""
    parts = [] if stable is None else [f"{stable.ready_replicas}/{stable.replicas}"]
    if canary is not None and (canary.replicas or canary.ready_replicas):
        parts.append(f"{canary.ready_replicas}/{canary.replicas}")
    return " + ".join(parts) or "0/0"


def _intent(d: Draft) -> Intent:
    st = d.status
    canary = st.canary
    stable = st.stable
    floor = st.stable_floor
    if canary is None:
        return Intent.of(stable, None, 0, 0, False, floor)
    if d.in_rollout and canary.weight == 100 and _steps_done(d):
        stable = canary  # promoting: the stable Deployment takes the new revision
    retired = st.canary_scale_down_at is not None and d.now >= st.canary_scale_down_at
    zero = not d.in_rollout and retired
    return Intent.of(stable, canary, canary.weight, canary.mirror or 0, zero, floor)


def _steps_done(d: Draft) -> bool:
    """All steps passed; without the strategy, keep whatever the stable Deployment runs so a
    missing strategy never flips it back and forth."""
    canary, index = d.status.canary, d.status.current_step_index
    assert canary is not None
    if d.obs.strategy is None:
        return runs(d.obs.stable, canary)
    return (index or 0) >= len(d.obs.strategy.steps)
