"""A check's state from one reading to the next, Prometheus-alert style.

Out of bounds for less than `for` is Pending; longer, Firing. A firing check clears
only after `keepFiringFor` of readings within bounds. A reading without a figure
(too little traffic, a failed query) changes nothing, so a quiet night neither
fires nor clears a check.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from coalmine.api.base import parse_duration
from coalmine.api.monitoring import CheckStatus, MonitoringCheck
from coalmine.monitoring.judge import Reading

Transition = Literal["fired", "resolved"]


def advance(
    previous: CheckStatus, check: MonitoringCheck, reading: Reading, now: datetime
) -> tuple[CheckStatus, Transition | None]:
    """The check's next status after `reading`, and whether it fired or resolved."""
    state = previous.model_copy()
    if reading.outcome not in ("Successful", "Failed"):
        if state.state != "Firing":  # a firing check keeps the figures it fired on
            state.message = reading.message
        return state, None
    state.message = reading.message
    state.value = reading.value
    if reading.outcome == "Failed":
        state.clear_since = None
        state.breaching_since = state.breaching_since or now
        if state.state == "Firing":
            return state, None
        if now - state.breaching_since >= parse_duration(check.for_):
            state.state, state.since, state.fired = "Firing", now, state.fired + 1
            return state, "fired"
        if state.state != "Pending":
            state.state, state.since = "Pending", now
        return state, None
    state.breaching_since = None
    if state.state == "Firing":
        state.clear_since = state.clear_since or now
        if now - state.clear_since < parse_duration(check.keep_firing_for):
            return state, None
        state.clear_since = None
        state.state, state.since = "Ok", now
        return state, "resolved"
    if state.state != "Ok":
        state.state, state.since = "Ok", now
    return state, None
