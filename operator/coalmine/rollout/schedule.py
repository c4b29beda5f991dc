"""When something is due: the next measurement, pause end, deadline or scale-down.

Read by the caller before `plan` (should it measure now?) and by `plan` for the
requeue delay, so both agree on one rule.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from coalmine.api.base import parse_duration
from coalmine.api.deployment import AnalysisRun, ModelDeployment, ModelDeploymentStatus
from coalmine.api.strategy import Analysis, RolloutStrategySpec, Step


def current_step(
    status: ModelDeploymentStatus, strategy: RolloutStrategySpec | None
) -> Step | None:
    """The step being walked, once the canary is ready."""
    index = status.current_step_index
    if strategy is None or status.canary is None or index is None or status.step_started_at is None:
        return None
    return strategy.steps[index] if index < len(strategy.steps) else None


def next_measurement(run: AnalysisRun, analysis: Analysis) -> datetime:
    """Builtin metrics need a first scrape to start their window, taken right away; after
    that one measurement per interval."""
    if run.canary_snapshot is None and any(m.provider == "builtin" for m in analysis.metrics):
        return run.started_at
    return (run.last_measured_at or run.started_at) + parse_duration(analysis.interval)


def measurement_due(
    md: ModelDeployment, strategy: RolloutStrategySpec | None, now: datetime
) -> Analysis | None:
    """The analysis step that should be measured now (interval elapsed since last measurement),
    else None."""
    status = md.status
    if status is None or status.phase == "Paused":
        return None
    step = current_step(status, strategy)
    run = status.analysis_run
    if step is None or step.analysis is None or run is None:
        return None
    if run.step_index != status.current_step_index:
        return None
    due = next_measurement(run, step.analysis)
    return step.analysis if now >= due and now > run.started_at else None


def counted_from(start: datetime, watching_since: datetime | None) -> datetime:
    """Where a progress deadline that began at `start` runs from: never before this operator
    could act (Observation.watching_since)."""
    return max(start, watching_since or start)


def _step_times(
    status: ModelDeploymentStatus,
    strategy: RolloutStrategySpec,
    step: Step,
    run: AnalysisRun | None,
    now: datetime,
    watching_since: datetime | None,
) -> list[datetime]:
    """When the current step next needs a look: the deadline while it waits for the canary's
    pods, else its pause's end or its next measurement."""
    assert status.step_started_at is not None
    if step.pause is None and step.analysis is None:
        return []
    if status.step_ready_at is None:
        deadline = timedelta(seconds=strategy.progress_deadline_seconds)
        ready_by = counted_from(status.step_started_at, watching_since) + deadline
        return [ready_by] if ready_by > now else []
    if step.pause is not None:
        duration = step.pause.duration
        return [status.step_ready_at + parse_duration(duration)] if duration else []
    assert step.analysis is not None
    started = run is not None and run.step_index == status.current_step_index
    return [next_measurement(run, step.analysis)] if started and run is not None else []


def requeue_after(
    status: ModelDeploymentStatus,
    strategy: RolloutStrategySpec | None,
    now: datetime,
    watching_since: datetime | None = None,
) -> float | None:
    """Seconds until the earliest timed event, or None when only a watch can change things.

    The canary's readiness deadline runs from `watching_since` at the earliest, as the
    walk counts it (Observation.watching_since)."""
    times = []
    for at in (status.canary_scale_down_at, status.stable_floor_until):
        if at is not None and at > now:
            times.append(at)
    if status.current_step_index is not None and status.rollout_started_at is not None:
        if status.step_started_at is None and strategy is not None:
            deadline = timedelta(seconds=strategy.progress_deadline_seconds)
            times.append(counted_from(status.rollout_started_at, watching_since) + deadline)
        step = current_step(status, strategy)
        run = status.analysis_run
        if step is not None and strategy is not None and status.phase != "Paused":
            times.extend(_step_times(status, strategy, step, run, now, watching_since))
    if not times:
        return None
    return max(0.0, (min(times) - now).total_seconds())
