"""kstatus-style conditions: set one, keeping lastTransitionTime when nothing changed."""

from __future__ import annotations

from datetime import datetime

from coalmine.api.base import Condition, ConditionStatus


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """A new list with `type_` set; its transition time moves only when its status does."""
    previous = next((c for c in conditions if c.type == type_), None)
    changed = previous is None or previous.status != status
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=now if changed or previous is None else previous.last_transition_time,
        observed_generation=generation,
    )
    return [c for c in conditions if c.type != type_] + [updated]
