"""kstatus conditions for each phase.

kstatus reads Reconciling (InProgress) and Stalled (Failed); Flux and Argo CD
health checks read those and Ready. The mapping:

| phase       | Ready | Reconciling         | Stalled | Progressing | Degraded |
| ----------- | ----- | ------------------- | ------- | ----------- | -------- |
| Pending     | False | True unless stalled | stalled | False       | False    |
| Progressing | False | True                | False   | True        | False    |
| Paused      | False | True unless stalled | stalled | True        | False    |
| Healthy     | True  | False               | False   | False       | False    |
| Degraded    | False | False               | True    | False       | True     |
| RolledBack  | False | False               | True    | False       | True     |

RolledBack is a failure of what Git asked for, so Ready is False and Stalled is
True (GitOps tools show it failed, `kubectl wait --for=condition=Ready` does not
pass); Degraded True says the stable version still serves.
"""

from __future__ import annotations

from coalmine.api.base import Condition, ConditionStatus
from coalmine.api.conditions import set_condition
from coalmine.api.deployment import (
    DEGRADED,
    MODEL_VERSION_AVAILABLE,
    PROGRESSING,
    READY,
    RECONCILING,
    STALLED,
)
from coalmine.rollout import reasons
from coalmine.rollout.draft import Draft
from coalmine.rollout.revision import pinned_problem


def _flag(value: bool) -> ConditionStatus:
    return "True" if value else "False"


def conditions(d: Draft) -> list[Condition]:
    """The five conditions of the drafted status, keeping unchanged transition times."""
    st = d.status
    phase, message = st.phase, st.message or ""
    values = {
        READY: phase == "Healthy",
        RECONCILING: not d.stalled and phase in ("Pending", "Progressing", "Paused"),
        STALLED: d.stalled,
        PROGRESSING: phase in ("Progressing", "Paused"),
        DEGRADED: phase in ("Degraded", "RolledBack"),
    }
    result = list(st.conditions)
    for type_, value in values.items():
        result = set_condition(
            result, type_, _flag(value), d.reason, message, d.now, d.md.metadata.generation
        )
    return _availability(d, result)


def _availability(d: Draft, result: list[Condition]) -> list[Condition]:
    """ModelVersionAvailable, for the stable revision: False (with an Event when it turns so)
    once its ModelVersion is deleted or re-created with another artifact."""
    stable = d.status.stable
    if stable is None or stable.pin is None:
        return [c for c in result if c.type != MODEL_VERSION_AVAILABLE]
    problem = pinned_problem(stable, d.obs.model_versions.get(stable.model_version))
    before = next((c for c in result if c.type == MODEL_VERSION_AVAILABLE), None)
    if problem is None:
        status: ConditionStatus = "True"
        reason = reasons.MODEL_VERSION_PRESENT
        message = f"stable serves {stable.model_version} as validated"
    else:
        status, (reason, message) = "False", problem
        if before is None or before.reason != reason:
            d.emit("Warning", reason, message)
    return set_condition(
        result, MODEL_VERSION_AVAILABLE, status, reason, message, d.now, d.md.metadata.generation
    )
