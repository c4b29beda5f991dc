"""The Lease election rule and the write fence (pure: a fake clock, no API server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from coalmine.kube import lease
from coalmine.kube.client import Kube, NotLeading
from coalmine.leadership import (
    LEASE_SECONDS,
    RENEW_DEADLINE_SECONDS,
    Holder,
    Leadership,
    decide,
    lease_spec,
)


def held(by: str | None) -> Holder:
    return Holder(identity=by, lease_seconds=LEASE_SECONDS, transitions=3, resource_version="7")


def test_a_missing_or_released_lease_is_taken() -> None:
    assert decide(None, "a", 0) == "acquire"
    assert decide(held(None), "a", 0) == "acquire"


def test_our_lease_is_renewed_however_old() -> None:
    assert decide(held("a"), "a", 0) == "renew"
    assert decide(held("a"), "a", 10 * LEASE_SECONDS) == "renew"


def test_another_holder_is_waited_for_until_its_lease_ran_out_unrenewed() -> None:
    assert decide(held("b"), "a", 0) == "wait"
    assert decide(held("b"), "a", LEASE_SECONDS) == "wait"
    assert decide(held("b"), "a", LEASE_SECONDS + 0.1) == "acquire"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_fence_closes_at_the_renew_deadline_before_anyone_may_take_over() -> None:
    clock = Clock()
    lead = Leadership(None, "ns", "lease", "a", clock=clock)  # type: ignore[arg-type]
    assert not lead.may_write()
    asyncio.run(_set(lead.leading))
    lead.renewed_at = clock.now
    assert lead.may_write()
    clock.now += RENEW_DEADLINE_SECONDS - 0.01
    assert lead.may_write()
    clock.now += 0.02
    assert not lead.may_write()
    assert RENEW_DEADLINE_SECONDS < LEASE_SECONDS  # a standby waits the whole lease


async def _set(event: asyncio.Event) -> None:
    event.set()


def test_a_fenced_kube_refuses_writes_before_sending_them() -> None:
    kube = Kube(object())  # type: ignore[arg-type]
    kube.fence = lambda: False
    with pytest.raises(NotLeading, match="does not hold the lease"):
        kube.merge_patch("ModelDeployment", "ns", "iris", {"status": {}})


def test_a_take_over_counts_a_transition_and_a_renewal_keeps_the_acquire_time() -> None:
    now = datetime(2026, 12, 1, 12, 0, 1, 500000, tzinfo=UTC)
    first = lease_spec(None, "acquire", "a", now, LEASE_SECONDS, None)
    assert first == {
        "holderIdentity": "a", "leaseDurationSeconds": LEASE_SECONDS,
        "renewTime": "2026-12-01T12:00:01.500000Z",
        "acquireTime": "2026-12-01T12:00:01.500000Z", "leaseTransitions": 0,
    }  # fmt: skip
    taken = lease_spec(held("b"), "acquire", "a", now, LEASE_SECONDS, "2026-01-01T00:00:00Z")
    assert (taken["leaseTransitions"], taken["acquireTime"]) == (4, first["acquireTime"])
    renewed = lease_spec(held("a"), "renew", "a", now, LEASE_SECONDS, "2026-01-01T00:00:00Z")
    assert (renewed["leaseTransitions"], renewed["acquireTime"]) == (3, "2026-01-01T00:00:00Z")


class RecordingKube:
    """Answers a Lease read with `held` and records every request's method."""

    def __init__(self, held: str) -> None:
        self.held = held
        self.methods: list[str] = []

    def request(self, method: str, path: str, **_: object) -> object:
        self.methods.append(method)
        if method == "GET":
            return {"metadata": {"resourceVersion": "7"}, "spec": {"holderIdentity": self.held}}
        return {}


def test_releasing_needs_only_the_verbs_the_chart_grants() -> None:
    """The chart's Role allows get and update on the Lease (and create): no patch."""
    ours = RecordingKube("a")
    assert lease.release(ours, "ns", "lease", "a", 1.0)  # type: ignore[arg-type]
    assert ours.methods == ["GET", "PUT"]
    theirs = RecordingKube("b")
    assert not lease.release(theirs, "ns", "lease", "a", 1.0)  # type: ignore[arg-type]
    assert theirs.methods == ["GET"]  # another replica's Lease is left alone
