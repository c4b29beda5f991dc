"""Leader election against the real API server: two replicas, one Lease.

Shortened timings (a 4 s lease) keep it quick; the rule is the operator's. One replica
leads and the other waits; when the leader stops renewing (killed, or cut off), its
fence closes at the renew deadline, and the standby takes the Lease only after a whole
lease duration without renewal, so they never both write.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import config

from coalmine.kube.client import Kube
from coalmine.leadership import Leadership, Timing
from tests.support.cluster import Cluster, ensure_namespace

FAST = Timing(lease_seconds=4, renew_deadline_seconds=2.5, retry_seconds=0.5)


@pytest.fixture
def lease_namespace(cluster: Cluster) -> Iterator[str]:
    name = f"lease-{uuid.uuid4().hex[:6]}"
    ensure_namespace(cluster, name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def replica(cluster: Cluster, namespace: str, identity: str) -> Leadership:
    kube = Kube(config.new_client_from_config(str(cluster.kubeconfig)))
    return Leadership(kube, namespace, "coalmine-operator", identity, timing=FAST)


async def _until(check: object, timeout: float) -> float:
    """Seconds until `check()` is true (polled every 50 ms), or fail after `timeout`."""
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, "timed out"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def test_one_leads_the_other_takes_over_after_the_lease_and_never_both(
    cluster: Cluster, lease_namespace: str
) -> None:
    a, b = replica(cluster, lease_namespace, "a"), replica(cluster, lease_namespace, "b")

    async def scenario() -> tuple[float, float, list[tuple[bool, bool]]]:
        first = asyncio.create_task(a.run())
        await _until(a.may_write, 10)
        second = asyncio.create_task(b.run())
        both: list[tuple[bool, bool]] = []
        for _ in range(40):  # 2 s: b keeps waiting while a renews
            both.append((a.may_write(), b.may_write()))
            await asyncio.sleep(0.05)
        assert not b.leading.is_set()
        first.cancel()  # a dies: it renews no more
        died = time.monotonic()
        fenced = await _until(lambda: not a.may_write(), 10)
        while not b.may_write():
            both.append((a.may_write(), b.may_write()))
            assert time.monotonic() - died < 15, "the standby never took over"
            await asyncio.sleep(0.05)
        took_over = time.monotonic() - died
        second.cancel()
        return fenced, took_over, both

    fenced, took_over, both = asyncio.run(scenario())
    assert not any(x and y for x, y in both), "both replicas could write at once"
    assert fenced <= FAST.renew_deadline_seconds + 0.2
    # It waits a whole lease after the last renewal it saw (at most a retry before death).
    assert FAST.lease_seconds - FAST.retry_seconds - 0.2 <= took_over <= 2 * FAST.lease_seconds
    lease = cluster.get("lease", "coalmine-operator", lease_namespace)["spec"]
    assert lease["holderIdentity"] == "b"
    assert lease["leaseTransitions"] == 1
    # Progress deadlines restart where b began to lead, not where a did.
    assert a.leading_since is not None
    assert b.leading_since is not None
    assert (b.leading_since - a.leading_since).total_seconds() >= took_over - 0.5


def test_a_released_lease_is_taken_at_once(cluster: Cluster, lease_namespace: str) -> None:
    a, b = replica(cluster, lease_namespace, "a"), replica(cluster, lease_namespace, "b")

    async def scenario() -> float:
        first = asyncio.create_task(a.run())
        await _until(a.may_write, 10)
        second = asyncio.create_task(b.run())
        await asyncio.sleep(1)
        first.cancel()
        a.release()
        assert not a.may_write()
        took_over = await _until(b.may_write, 10)
        second.cancel()
        return took_over

    assert asyncio.run(scenario()) < FAST.lease_seconds  # no need to wait the lease out
