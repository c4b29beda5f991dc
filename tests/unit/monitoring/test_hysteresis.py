"""A check's state machine: `for` before firing, `keepFiringFor` before clearing, and no
change on readings without a figure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coalmine.api.monitoring import CheckStatus, MonitoringCheck
from coalmine.monitoring.hysteresis import advance
from coalmine.monitoring.judge import Reading

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BAD = Reading("Failed", 0.3, "ood 0.30 > max 0.05")
GOOD = Reading("Successful", 0.01, "ood 0.01 within max 0.05")
QUIET = Reading("Inconclusive", None, "ood: too little traffic: 3 samples < 100")


def check(for_: str = "0s", keep: str = "0s") -> MonitoringCheck:
    return MonitoringCheck.model_validate(
        {
            "name": "ood",
            "provider": "builtin",
            "builtin": {"metric": "outOfDistribution"},
            "threshold": {"max": 0.05},
            "for": for_,
            "keepFiringFor": keep,
        }
    )


def walk(c: MonitoringCheck, readings: list[Reading], step: int = 10) -> list[tuple[str, str]]:
    """(state, transition) after each reading, one reading every `step` seconds."""
    state = CheckStatus(name="ood", variant="stable", version="v1", since=T0)
    out: list[tuple[str, str]] = []
    for i, reading in enumerate(readings):
        state, transition = advance(state, c, reading, T0 + timedelta(seconds=step * (i + 1)))
        out.append((state.state, transition or ""))
    return out


def test_without_for_the_first_breach_fires_and_the_first_good_window_clears() -> None:
    assert walk(check(), [GOOD, BAD, BAD, GOOD]) == [
        ("Ok", ""),
        ("Firing", "fired"),
        ("Firing", ""),
        ("Ok", "resolved"),
    ]


def test_a_breach_shorter_than_for_stays_pending_and_never_fires() -> None:
    assert walk(check(for_="20s"), [BAD, BAD, GOOD, BAD]) == [
        ("Pending", ""),
        ("Pending", ""),
        ("Ok", ""),
        ("Pending", ""),
    ]
    assert walk(check(for_="20s"), [BAD, BAD, BAD])[-1] == ("Firing", "fired")


def test_one_good_window_inside_keep_firing_for_does_not_clear() -> None:
    states = walk(check(keep="30s"), [BAD, GOOD, BAD, GOOD, GOOD, GOOD, GOOD])
    assert [s for s, _ in states] == ["Firing"] * 6 + ["Ok"]
    assert [t for _, t in states].count("fired") == 1
    assert states[-1] == ("Ok", "resolved")


@pytest.mark.parametrize("outcome", ["Inconclusive", "Error"])
def test_readings_without_a_figure_change_nothing(outcome: str) -> None:
    quiet = Reading(outcome, None, "ood: no data")  # type: ignore[arg-type]
    assert walk(check(), [BAD, quiet, quiet])[-1] == ("Firing", "")
    assert walk(check(), [quiet, quiet]) == [("Unknown", ""), ("Unknown", "")]


def test_a_firing_check_keeps_the_figures_it_fired_on_through_a_quiet_window() -> None:
    state = CheckStatus(name="ood", variant="stable", version="v1", since=T0)
    state, _ = advance(state, check(), BAD, T0)
    state, _ = advance(state, check(), QUIET, T0 + timedelta(seconds=10))
    assert (state.message, state.value) == (BAD.message, BAD.value)


def test_since_and_fired_count_follow_the_transitions() -> None:
    state = CheckStatus(name="ood", variant="stable", version="v1", since=T0)
    c = check()
    for i, reading in enumerate([BAD, GOOD, BAD]):
        state, _ = advance(state, c, reading, T0 + timedelta(seconds=i))
    assert (state.state, state.since, state.fired) == ("Firing", T0 + timedelta(seconds=2), 2)
