"""Walking the steps of a rollout in progress, up to and including the promotion."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from coalmine.analysis.verdict import Measurement
from coalmine.api.base import parse_duration
from coalmine.api.deployment import AnalysisResult, AnalysisRun, VariantStatus
from coalmine.api.strategy import Analysis, RolloutStrategySpec, Step, summarize
from coalmine.rollout import reasons
from coalmine.rollout.commands import is_full_promote
from coalmine.rollout.draft import Draft, approval_message, clip
from coalmine.rollout.health import crash_loop, is_ready
from coalmine.rollout.revision import runs
from coalmine.traffic import canary_pods

OUTCOME_EVENTS: dict[str, tuple[Literal["Normal", "Warning"], str]] = {
    "Successful": ("Normal", reasons.ANALYSIS_SUCCESSFUL),
    "Failed": ("Warning", reasons.ANALYSIS_FAILED),
    "Inconclusive": ("Normal", reasons.ANALYSIS_INCONCLUSIVE),
    "Error": ("Warning", reasons.ANALYSIS_ERROR),
}


def progress(d: Draft) -> None:
    """Advance the rollout of status.canary as far as the observation allows."""
    st, obs = d.status, d.obs
    canary = st.canary
    assert canary is not None
    assert st.current_step_index is not None
    if obs.target is None or not obs.target_valid:
        problem = "was deleted" if obs.target is None else "is no longer Validated"
        rollback(d, f"ModelVersion {canary.model_version} {problem}")
        return
    if obs.strategy is None:
        message = f"holding at {canary.weight}%: {_strategy_name(d)} not found"
        d.set_phase("Paused", reasons.STRATEGY_NOT_FOUND, message, stalled=True, event="Warning")
        return
    crash = crash_loop(obs.canary, canary, obs.strategy.max_canary_restarts)
    if crash is not None:
        rollback(d, f"canary {crash}")
        return
    if st.step_started_at is None and not _canary_started(d, canary):
        return
    token = d.take("promote")
    if token is not None:
        _promote_command(d, token)
    _walk(d)


def _strategy_name(d: Draft) -> str:
    ref = d.md.spec.strategy_ref
    return f"RolloutStrategy {ref.name}" if ref else "the strategy"


def _canary_started(d: Draft, canary: VariantStatus) -> bool:
    """Whether the canary is Ready; rolls back when the deadline passed first."""
    st, obs = d.status, d.obs
    if is_ready(obs.canary, canary, serving=True):
        st.step_started_at = d.now
        d.emit(
            "Normal", reasons.CANARY_READY, f"canary {canary.version} is ready; walking the steps"
        )
        return True
    deadline = d.strategy.progress_deadline_seconds
    assert st.rollout_started_at is not None
    if d.now >= d.counted_from(st.rollout_started_at) + timedelta(seconds=deadline):
        seen = obs.canary if runs(obs.canary, canary) else None
        ready = f"{seen.ready_replicas}/{seen.replicas} ready" if seen else "no canary pods"
        detail = f": {seen.failure_message}" if seen and seen.failure_message else ""
        rollback(d, f"canary not ready within {deadline}s ({ready}){detail}")
        return False
    message = f"revision {canary.revision}: waiting for canary {canary.version} to become ready"
    d.set_phase("Progressing", reasons.WAITING_FOR_CANARY, message, event="Normal")
    return False


def _promote_command(d: Draft, token: str) -> None:
    steps = d.strategy.steps
    st = d.status
    assert st.current_step_index is not None
    if st.current_step_index >= len(steps):
        return
    step = steps[st.current_step_index]
    full = is_full_promote(token)
    if not full and _gated(d, step):
        d.emit("Warning", reasons.PROMOTE_BLOCKED, approval_message(d))
        return
    author = _words(d.acted("promote", token))
    if full:
        message = f"skipping every remaining step (promote --full{author})"
        d.emit("Normal", reasons.PROMOTED_BY_COMMAND, message)
        st.current_step_index = len(steps)
        return
    _complete(d, step, f"by `coalmine promote`{author}")


def _words(author: str) -> str:
    """ ", by alice" after a command's name, or nothing when its author is unknown."""
    return f", {author}" if author else ""


def _gated(d: Draft, step: Step | None) -> bool:
    """Client traffic (a weight, or the promotion when `step` is None) needs approval."""
    gives_traffic = step is None or bool(step.set_weight)
    return gives_traffic and not d.approved


def _walk(d: Draft) -> None:
    st = d.status
    steps = d.strategy.steps
    assert st.current_step_index is not None
    while st.current_step_index < len(steps):
        step = steps[st.current_step_index]
        if _gated(d, step):
            d.set_phase("Paused", reasons.AWAITING_APPROVAL, approval_message(d), event="Normal")
            return
        if _measures_or_waits(step) and not _canary_at_size(d):
            return
        if not _step_done(d, step):
            return
        _complete(d, step, "")
    _promotion(d)


def _position(d: Draft) -> str:
    assert d.status.current_step_index is not None
    assert d.status.canary is not None
    total = len(d.strategy.steps)
    return f"step {d.status.current_step_index + 1}/{total} at {d.status.canary.weight}%"


def _measures_or_waits(step: Step) -> bool:
    return step.analysis is not None or step.pause is not None


def _canary_at_size(d: Draft) -> bool:
    """Whether the canary has run every pod its weight asks, all ready, since the step
    began, so that a pause or an analysis judges the canary at the share its weight asks,
    not a part of it. Checked once per step: once passed (`step_ready_at`), pods lost or
    added later (an HPA scaling stable out) do not stop the step.

    The pod count follows the weight in the apply after the plan that set it, so the
    observation may still show the old count: the size is the router's, for the stable
    pods seen. Pods not all ready within the progress deadline roll the canary back, as a
    canary that never became ready does."""
    st, seen, canary = d.status, d.obs.canary, d.status.canary
    assert st.step_started_at is not None
    assert canary is not None
    if st.step_ready_at is not None:
        return True
    stable_pods = d.obs.stable.replicas if d.obs.stable is not None else None
    wanted = canary_pods(d.md, canary.weight, stable_pods, canary.mirror or 0)
    if seen is not None and runs(seen, canary) and seen.rolled_out and seen.replicas >= wanted:
        st.step_ready_at = d.now
        return True
    deadline = d.strategy.progress_deadline_seconds
    pods = f"{seen.ready_replicas if seen else 0}/{wanted} ready"
    if d.now >= d.counted_from(st.step_started_at) + timedelta(seconds=deadline):
        rollback(d, f"canary pods not all ready within {deadline}s of {_position(d)} ({pods})")
        return False
    message = f"{_position(d)}: waiting for the canary's pods ({pods})"
    d.set_phase("Progressing", reasons.WAITING_FOR_CANARY_PODS, message)
    return False


def _step_done(d: Draft, step: Step) -> bool:
    """Whether the current step is complete; otherwise sets why it waits."""
    if step.set_weight is not None or step.mirror is not None:
        return True
    if step.analysis is not None:
        return _analysis_done(d, step.analysis)
    assert step.pause is not None
    assert d.status.step_ready_at is not None
    if step.pause.duration is None:
        message = f"{_position(d)}: paused until `coalmine promote`"
        d.set_phase("Paused", reasons.AWAITING_PROMOTE, message, event="Normal")
        return False
    until = d.status.step_ready_at + parse_duration(step.pause.duration)
    if d.now >= until:
        return True
    message = f"{_position(d)}: pausing until {until.isoformat()}"
    d.set_phase("Progressing", reasons.PAUSING, message)
    return False


def _complete(d: Draft, step: Step, how: str) -> None:
    st = d.status
    assert st.canary is not None
    assert st.current_step_index is not None
    if step.set_weight is not None:
        st.canary.weight = step.set_weight
    if step.mirror is not None:
        st.canary.mirror = step.mirror
    total = len(d.strategy.steps)
    what = summarize(RolloutStrategySpec(steps=[step]))
    done = f"step {st.current_step_index + 1}/{total} ({what}) completed"
    d.emit("Normal", reasons.STEP_COMPLETED, f"{done} {how}".strip())
    st.current_step_index += 1
    st.step_started_at, st.step_ready_at = d.now, None
    st.analysis_run = None


def _analysis_done(d: Draft, analysis: Analysis) -> bool:
    st = d.status
    assert st.current_step_index is not None
    run = st.analysis_run
    if run is None or run.step_index != st.current_step_index:
        run = st.analysis_run = AnalysisRun(step_index=st.current_step_index, started_at=d.now)
    m = d.obs.measurement
    if m is not None and _belongs(m.time, run):
        _record(d, run, m)
    if run.failures > analysis.failure_limit:
        failed = [
            r.message or r.name
            for r in (st.last_analysis.metrics if st.last_analysis else [])
            if r.outcome == "Failed"
        ]
        limit = f"{run.failures} failed measurements, limit {analysis.failure_limit}"
        rollback(d, f"analysis failed ({limit}): {'; '.join(failed)}")
        return False
    if run.successes + run.failures >= analysis.count:
        return True
    waits = run.inconclusive + run.errors
    if analysis.inconclusive_limit is not None and waits > analysis.inconclusive_limit:
        message = (
            f"{_position(d)}: {waits} inconclusive measurements (limit"
            f" {analysis.inconclusive_limit}); `coalmine promote` to go on or `coalmine abort`"
        )
        d.set_phase("Paused", reasons.ANALYSIS_INCONCLUSIVE, message, event="Warning")
        return False
    since = d.counted_from(run.progressed_at or run.started_at)
    patience = max(
        timedelta(seconds=d.strategy.progress_deadline_seconds),
        2 * parse_duration(analysis.interval),
    )
    if d.now >= since + patience:
        # No traffic or no ready canary pods must not hold a rollout forever.
        last, canary = st.last_analysis, st.canary
        assert canary is not None
        why = last.message if last and last.revision == canary.revision and last.message else ""
        rollback(
            d,
            f"analysis made no progress for {patience.total_seconds():.0f}s (progress deadline):"
            f" {run.successes + run.failures}/{analysis.count} conclusive, {waits} inconclusive"
            f" or errors{': ' + why if why else ''}",
        )
        return False
    message = f"{_position(d)}: analysis {run.successes + run.failures}/{analysis.count}"
    d.set_phase("Progressing", reasons.ANALYZING, message)
    return False


def _belongs(time: datetime, run: AnalysisRun) -> bool:
    """A measurement counts once, and only for a run that existed when it was taken."""
    return time > run.started_at and (run.last_measured_at is None or time > run.last_measured_at)


def _record(d: Draft, run: AnalysisRun, m: Measurement) -> None:
    run.canary_snapshot, run.stable_snapshot = m.canary_snapshot, m.stable_snapshot
    run.last_measured_at = m.time
    if m.baseline:
        return
    run.measurements += 1
    if m.outcome in ("Successful", "Failed"):
        run.progressed_at = m.time
    if m.outcome == "Successful":
        run.successes += 1
    elif m.outcome == "Failed":
        run.failures += 1
    elif m.outcome == "Inconclusive":
        run.inconclusive += 1
    else:
        run.errors += 1
    canary = d.status.canary
    assert canary is not None
    summary = "; ".join(r.message or r.name for r in m.metrics)
    d.status.last_analysis = AnalysisResult(
        revision=canary.revision,
        step_index=run.step_index,
        outcome=m.outcome,
        time=m.time,
        metrics=m.metrics,
        message=clip(summary),
    )
    type_, reason = OUTCOME_EVENTS[m.outcome]
    d.emit(type_, reason, f"measurement {run.measurements}: {m.outcome}: {summary}")


def _promotion(d: Draft) -> None:
    """All steps passed: send everything to the canary while the stable Deployment takes the
    new version, then hand traffic back to stable."""
    st = d.status
    canary = st.canary
    assert canary is not None
    if _gated(d, None):
        d.set_phase("Paused", reasons.AWAITING_APPROVAL, approval_message(d), event="Normal")
        return
    if canary.weight != 100 or canary.mirror:
        canary.weight, canary.mirror = 100, None
        d.emit(
            "Normal", reasons.PROMOTING, f"all steps passed: stable is moving to {canary.version}"
        )
    if not is_ready(d.obs.stable, canary, serving=d.stable_serves):
        message = f"revision {canary.revision}: promoting {canary.version} to stable"
        d.set_phase("Progressing", reasons.PROMOTING, message)
        return
    d.record(canary, "Promoted", f"passed {summarize(d.strategy)}")
    st.stable = canary.model_copy(update={"weight": 100})
    d.end_rollout(d.strategy.scale_down_delay_seconds)
    message = f"serving {canary.version} (revision {canary.revision})"
    d.set_phase("Healthy", reasons.SERVING, message)
    approved = f", {canary.approval.text()}" if canary.approval else ""
    message = f"promoted {canary.version} (revision {canary.revision}) to stable{approved}"
    d.emit("Normal", reasons.PROMOTED, message)


def rollback(d: Draft, reason: str, outcome: str = reasons.ROLLED_BACK) -> None:
    """All traffic back to stable at once; this revision is not retried by itself."""
    st = d.status
    canary = st.canary
    assert canary is not None
    d.record(canary, "Aborted" if outcome == reasons.ABORTED else "RolledBack", reason)
    st.aborted_revision, st.aborted_model_version = canary.revision, canary.model_version
    st.aborted_template_hash = canary.pin.template_hash if canary.pin else None
    d.end_rollout(d.strategy.abort_scale_down_delay_seconds)
    message = f"revision {canary.revision} ({canary.version}) rolled back: {reason}"
    d.set_phase("RolledBack", reasons.ROLLED_BACK, message, stalled=True)
    d.emit("Warning", outcome, message)
