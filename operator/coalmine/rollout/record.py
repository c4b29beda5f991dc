"""status.rolloutRecord: the points a report of the current or last rollout is drawn from.

Points are derived from what this reconcile changed (the status it started from against
the one decided), so re-planning from the decided status with the same observation adds
nothing: `plan` stays a fixed point.
"""

from __future__ import annotations

from coalmine.api.deployment import (
    RECORD_POINTS,
    AnalysisResult,
    ModelDeploymentStatus,
    PointMetric,
    RecordPoint,
    RolloutRecord,
)
from coalmine.api.strategy import AnalysisMetric
from coalmine.rollout.draft import Draft

END_WEIGHTS = {"Promoted": 100, "RolledBack": 0, "Aborted": 0, "Superseded": 0}


def update_record(before: ModelDeploymentStatus | None, d: Draft) -> None:
    """Start the record when a revision starts; append a point for each judged measurement,
    each change of weight or phase during the rollout, and the promotion or rollback."""
    st = d.status
    canary = st.canary
    rec = st.rollout_record
    if d.in_rollout and canary is not None and (rec is None or rec.revision != canary.revision):
        rec = st.rollout_record = RolloutRecord(
            revision=canary.revision,
            model_version=canary.model_version,
            version=canary.version,
            from_version=st.stable.version if st.stable else None,
            started_at=st.rollout_started_at or d.now,
        )
    if rec is None:
        return
    points = rec.points
    last = points[-1] if points else None
    analysis = st.last_analysis
    if (
        analysis is not None
        and analysis.revision == rec.revision
        and analysis != (before.last_analysis if before else None)
    ):
        weight = last.canary_weight if last else (canary.weight if canary else 0)
        points.append(
            RecordPoint(
                time=analysis.time,
                step_index=analysis.step_index,
                canary_weight=weight,
                phase=st.phase,
                outcome=analysis.outcome,
                metrics=_metrics(d, analysis),
            )
        )
    last = points[-1] if points else None
    moved = last is None or (last.canary_weight, last.phase) != (
        canary.weight if canary else None,
        st.phase,
    )
    if d.in_rollout and canary is not None and canary.revision == rec.revision and moved:
        points.append(
            RecordPoint(
                time=d.now,
                step_index=st.current_step_index,
                canary_weight=canary.weight,
                phase=st.phase,
            )
        )
    known = len(before.history) if before else 0
    for entry in st.history[known:]:
        if entry.revision != rec.revision or entry.outcome not in END_WEIGHTS:
            continue
        points.append(
            RecordPoint(
                time=entry.time,
                step_index=points[-1].step_index if points else None,
                canary_weight=END_WEIGHTS[entry.outcome],
                phase=st.phase,
                outcome=entry.outcome,
                message=entry.reason,
            )
        )
    del points[:-RECORD_POINTS]


def _metrics(d: Draft, analysis: AnalysisResult) -> dict[str, PointMetric]:
    defined = _defined(d, analysis.step_index)
    result: dict[str, PointMetric] = {}
    for m in analysis.metrics:
        spec = defined.get(m.name)
        kind = None
        if spec is not None:
            kind = spec.builtin.metric if spec.builtin is not None else spec.provider
        result[m.name] = PointMetric(
            canary=m.value,
            stable=m.stable_value,
            outcome=m.outcome,
            kind=kind,
            max=spec.threshold.max if spec else None,
            min=spec.threshold.min if spec else None,
        )
    return result


def _defined(d: Draft, step_index: int) -> dict[str, AnalysisMetric]:
    """The strategy's metrics of the analysis step that was measured, by name."""
    steps = d.strategy.steps
    if step_index >= len(steps) or steps[step_index].analysis is None:
        return {}
    analysis = steps[step_index].analysis
    assert analysis is not None
    return {m.name: m for m in analysis.metrics}
