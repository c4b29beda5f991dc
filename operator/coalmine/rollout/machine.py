"""The decisions outside a step walk: first serve, starting, superseding and ending
rollouts, the steady state, and the CLI commands."""

from __future__ import annotations

from coalmine.api.deployment import Pin, VariantStatus
from coalmine.api.governance import CommandName
from coalmine.api.strategy import summarize
from coalmine.rollout import reasons
from coalmine.rollout.commands import undo_revision
from coalmine.rollout.draft import Draft, approval_message
from coalmine.rollout.health import crash_loop, is_ready
from coalmine.rollout.revision import asks_for, changes
from coalmine.rollout.walk import progress, rollback


def decide(d: Draft) -> None:
    """Every decision of one reconcile, in priority order."""
    st = d.status
    if st.stable is None:
        _first_serve(d)
        return
    _stop_commands(d)
    if d.in_rollout:
        assert st.canary is not None
        if asks_for(d.md, d.desired, st.canary):
            progress(d)
            return
        _supersede(d)
    _retry_command(d)
    _start_or_hold(d)


def _target_problem(d: Draft) -> tuple[str, str, bool] | None:
    """(reason, message, stalled) when the target cannot be rolled out now."""
    name = d.md.spec.model_version
    target = d.obs.target
    if target is None:
        return reasons.MODEL_VERSION_NOT_FOUND, f"ModelVersion {name} not found", True
    if not d.obs.target_valid:
        phase = target.status.phase if target.status else "Pending"
        why = target.status.message if target.status and target.status.message else phase
        if phase == "Invalid":
            return reasons.MODEL_VERSION_INVALID, f"ModelVersion {name} is Invalid: {why}", True
        return (
            reasons.WAITING_FOR_VALIDATION,
            f"ModelVersion {name} is not validated yet ({why})",
            False,
        )
    if d.obs.strategy is None:
        ref = d.md.spec.strategy_ref
        return (
            reasons.STRATEGY_NOT_FOUND,
            f"RolloutStrategy {ref.name if ref else ''} not found",
            True,
        )
    return None


def _first_serve(d: Draft) -> None:
    """Nothing serves yet, so there is nothing to protect: serve the target directly."""
    problem = _target_problem(d)
    if problem is not None:
        reason, message, stalled = problem
        d.set_phase("Pending", reason, message, stalled=stalled, event="Warning")
        return
    if not d.approved:
        d.set_phase("Paused", reasons.AWAITING_APPROVAL, approval_message(d))
        return
    assert d.obs.target is not None
    st = d.status
    st.latest_revision += 1
    st.stable = VariantStatus(
        model_version=d.obs.target.metadata.name,
        version=d.obs.target.spec.version,
        revision=st.latest_revision,
        weight=100,
        pin=d.desired,
        approval=d.obs.target.approval,
    )
    d.record(st.stable, "Promoted", "first version served")
    d.emit(
        "Normal",
        reasons.FIRST_REVISION,
        f"deploying {st.stable.version} (revision {st.stable.revision})",
    )
    _steady(d)


def _start_or_hold(d: Draft) -> None:
    st = d.status
    assert st.stable is not None
    if asks_for(d.md, d.desired, st.stable):
        _clear_aborted(d)
        _steady(d)
        return
    if _asks_for_aborted(d):
        message = st.message or f"revision {st.aborted_revision} rolled back"
        d.set_phase("RolledBack", reasons.ROLLED_BACK, message, stalled=True)
        return
    problem = _target_problem(d)
    if problem is not None:
        reason, message, stalled = problem
        d.set_phase(
            "Degraded" if stalled else "Pending", reason, message, stalled=stalled, event="Warning"
        )
        return
    _start_revision(d)
    progress(d)


def _start_revision(d: Draft) -> None:
    st, target, pin = d.status, d.obs.target, d.desired
    assert target is not None
    assert pin is not None
    assert st.stable is not None
    st.latest_revision += 1
    st.canary = VariantStatus(
        model_version=target.metadata.name,
        version=target.spec.version,
        revision=st.latest_revision,
        weight=0,
        pin=pin,
        changes=changes(st.stable, target.metadata.name, pin),
    )
    st.current_step_index = 0
    st.rollout_started_at = d.now
    st.step_started_at = st.analysis_run = st.canary_scale_down_at = None
    st.step_ready_at = None
    _clear_aborted(d)
    d.emit(
        "Normal",
        reasons.ROLLOUT_STARTED,
        f"revision {st.latest_revision}: {st.stable.version} -> {target.spec.version}"
        f" ({', '.join(st.canary.changes)} changed; {summarize(d.strategy)})",
    )


def _asks_for_aborted(d: Draft) -> bool:
    """The spec asks for exactly the revision that was rolled back."""
    st = d.status
    if st.aborted_template_hash is not None and d.desired is not None:
        return d.desired.template_hash == st.aborted_template_hash
    return st.aborted_model_version is not None and (
        d.md.spec.model_version == st.aborted_model_version
    )


def _clear_aborted(d: Draft) -> None:
    st = d.status
    st.aborted_revision = st.aborted_model_version = st.aborted_template_hash = None


def _supersede(d: Draft) -> None:
    """The spec asks for another revision during a rollout: drop the canary at once."""
    canary = d.status.canary
    assert canary is not None
    pin = d.desired
    what = changes(canary, d.md.spec.model_version, pin) if pin is not None else ["modelVersion"]
    reason = (
        f"spec.modelVersion changed to {d.md.spec.model_version}"
        if what == ["modelVersion"]
        else f"superseded by a new revision ({', '.join(what)} changed)"
    )
    d.record(canary, "Superseded", reason)
    d.end_rollout(d.strategy.abort_scale_down_delay_seconds)
    d.emit("Normal", reasons.SUPERSEDED, f"revision {canary.revision} ({canary.version}): {reason}")


def _steady(d: Draft) -> None:
    """No rollout: report how the stable Deployment is doing."""
    stable = d.status.stable
    assert stable is not None
    crash = crash_loop(d.obs.stable, stable, d.strategy.max_canary_restarts)
    if crash is not None:
        d.set_phase(
            "Degraded", reasons.CRASH_LOOP, f"stable {crash}", stalled=True, event="Warning"
        )
    elif not is_ready(d.obs.stable, stable, serving=d.stable_serves):
        message = f"rolling out the stable Deployment ({stable.version})"
        d.set_phase("Progressing", reasons.STABLE_NOT_READY, message)
    else:
        message = f"serving {stable.version} (revision {stable.revision})"
        d.set_phase("Healthy", reasons.SERVING, message, event="Normal")


def _stop_commands(d: Draft) -> None:
    """`abort` and `undo` during a rollout roll the canary back; `undo` without one goes back
    to an earlier stable revision."""
    abort, undo = d.take("abort"), d.take("undo")
    if d.in_rollout and (abort is not None or undo is not None):
        how: CommandName = "abort" if abort is not None else "undo"
        token = abort if abort is not None else undo
        assert token is not None
        by = f" {d.acted(how, token)}".rstrip()
        rollback(d, f"{how} requested{by} with `coalmine {how}`", reasons.ABORTED)
    elif undo is not None:
        _undo(d, undo)
    elif abort is not None:
        d.emit("Normal", reasons.COMMAND_IGNORED, "abort: no rollout in progress")


def _undo(d: Draft, token: str) -> None:
    """Serve an earlier stable revision again (as a new revision, straight to stable: it served
    before). spec still names the current version, so that version is marked rolled back and
    is not rolled out again until the spec changes or `retry`."""
    st = d.status
    current = st.stable
    assert current is not None
    wanted = undo_revision(token)
    earlier = [
        h
        for h in reversed(st.history)
        if h.outcome == "Promoted"
        and _differs(h.pin, h.model_version, current)
        and (wanted is None or h.revision == wanted)
    ]
    if not earlier:
        which = f"revision {wanted}" if wanted is not None else "an earlier promoted revision"
        d.emit("Warning", reasons.UNDO_IMPOSSIBLE, f"undo: {which} is not in the history")
        return
    back = earlier[0]
    found = d.obs.model_versions.get(back.model_version)
    if back.pin is not None and (found is None or found.metadata.uid != back.pin.model_version_uid):
        message = (
            f"undo: revision {back.revision} served ModelVersion {back.model_version}, which"
            " no longer exists as it was"
        )
        d.emit("Warning", reasons.UNDO_IMPOSSIBLE, message)
        return
    author = d.acted("undo", token)
    d.record(current, "RolledBack", f"undone to revision {back.revision} {author}".strip())
    st.aborted_revision, st.aborted_model_version = current.revision, current.model_version
    st.aborted_template_hash = current.pin.template_hash if current.pin else None
    st.latest_revision += 1
    st.stable = VariantStatus(
        model_version=back.model_version,
        version=back.version,
        revision=st.latest_revision,
        weight=100,
        pin=back.pin,
        changes=changes(current, back.model_version, back.pin) if back.pin else [],
    )
    d.record(st.stable, "Promoted", f"undo to revision {back.revision}")
    message = (
        f"revision {current.revision} ({current.version}) undone: serving {back.version}"
        f" again as revision {st.latest_revision}"
    )
    d.set_phase("RolledBack", reasons.ROLLED_BACK, message, stalled=True)
    d.emit("Warning", reasons.UNDONE, message)


def _retry_command(d: Draft) -> None:
    token = d.take("retry")
    if token is None:
        return
    st = d.status
    if st.aborted_model_version is None:
        d.emit("Normal", reasons.COMMAND_IGNORED, "retry: nothing was rolled back")
        return
    author = d.acted("retry", token)
    message = f"retrying {st.aborted_model_version} as a new revision {author}".strip()
    d.emit("Normal", reasons.RETRYING, message)
    _clear_aborted(d)


def _differs(pin: Pin | None, name: str, current: VariantStatus) -> bool:
    """Whether a history entry served something other than `current`."""
    if pin is None or current.pin is None:
        return name != current.model_version
    return pin.template_hash != current.pin.template_hash
