"""Shared API types: durations, quantities, conditions, metadata."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from coalmine.api.base import Condition, Duration, ObjectMeta, Quantity, parse_duration

DURATION = TypeAdapter(Duration)
QUANTITY = TypeAdapter(Quantity)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0s", timedelta(0)),
        ("500ms", timedelta(milliseconds=500)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h0m5s", timedelta(hours=1, seconds=5)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert DURATION.validate_python(text) == text
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "5 m", "5min", "-5s", "1.5s", "s", "1d", "5M"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValidationError):
        DURATION.validate_python(text)
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@given(
    st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from(["ms", "s", "m", "h"])),
        min_size=1,
        max_size=4,
    )
)
def test_parse_duration_sums_its_parts(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in parts)
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    expected = sum(n * scale[unit] for n, unit in parts)
    assert parse_duration(text).total_seconds() == pytest.approx(expected)


@pytest.mark.parametrize("value", [1, "1", "500m", "1Gi", "256Mi", "1.5", "2e3"])
def test_quantities(value: int | str) -> None:
    assert QUANTITY.validate_python(value) == value


@pytest.mark.parametrize("value", ["lots", "1 Gi", "", "1GB"])
def test_bad_quantities(value: str) -> None:
    with pytest.raises(ValidationError):
        QUANTITY.validate_python(value)


def test_condition_round_trips_in_camel_case() -> None:
    raw = {
        "type": "Ready",
        "status": "True",
        "reason": "Serving",
        "message": "all replicas ready",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 3,
    }
    condition = Condition.model_validate(raw)
    assert condition.observed_generation == 3
    assert condition.to_json() == raw | {"lastTransitionTime": "2026-01-01T00:00:00Z"}


def test_condition_status_is_tri_state() -> None:
    with pytest.raises(ValidationError):
        Condition.model_validate({"type": "Ready", "status": "yes"})


def test_condition_needs_an_aware_timestamp() -> None:
    with pytest.raises(ValidationError):
        Condition.model_validate(
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00"}
        )


def test_object_meta_ignores_server_fields() -> None:
    meta = ObjectMeta.model_validate(
        {
            "name": "x",
            "uid": "u",
            "managedFields": [{}],
            "creationTimestamp": "2026-01-01T00:00:00Z",
        }
    )
    assert (meta.name, meta.uid, meta.annotations) == ("x", "u", {})
