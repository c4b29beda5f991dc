"""Who may reconcile: one leader, elected through a coordination.k8s.io Lease.

Every replica watches (kopf fills every replica's work queue), but only the leader's
workers take keys, and its kube layer refuses writes once the lease may have passed
to someone else. The timings are client-go's and Argo Rollouts': a 15 s lease, renewed
every 2 s, given up when no renewal succeeded for 10 s. So a leader cut off from the
API server stops writing at least 5 s before any standby may take the lease, and a
standby takes over one lease duration after it saw the last renewal, at its next retry
(15-19 s after a leader's death, measured in tests/e2e/test_operator_failover.py).

`decide` and `lease_spec` are the pure rule; `Leadership` runs it, reading and writing
the Lease through coalmine.kube.lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from kubernetes.client.exceptions import ApiException

from coalmine.kube import lease
from coalmine.kube.client import Kube

log = logging.getLogger("coalmine.leadership")

LEASE_SECONDS = 15
RENEW_DEADLINE_SECONDS = 10.0
RETRY_SECONDS = 2.0
LEASE_REQUEST_TIMEOUT = 5.0
"""Each Lease request gives up well inside the renew deadline, so a hung API server
cannot hold the loop past it (the fence reads the clock itself in any case)."""


@dataclass(frozen=True)
class Timing:
    """The election's periods; tests shorten them, the operator keeps the defaults."""

    lease_seconds: int = LEASE_SECONDS
    renew_deadline_seconds: float = RENEW_DEADLINE_SECONDS
    retry_seconds: float = RETRY_SECONDS


Action = Literal["acquire", "renew", "wait"]


@dataclass(frozen=True)
class Holder:
    """The Lease as last read: who holds it, and its version (for optimistic updates)."""

    identity: str | None
    lease_seconds: int
    transitions: int
    resource_version: str | None


def decide(held: Holder | None, me: str, unchanged_for: float) -> Action:
    """What to do with the Lease: create or take it, renew ours, or wait.

    `unchanged_for` is how long (by this replica's clock) the Lease has looked exactly as
    now; other replicas' clocks are never trusted, as in client-go.
    """
    if held is None or held.identity is None:
        return "acquire"
    if held.identity == me:
        return "renew"
    return "acquire" if unchanged_for > held.lease_seconds else "wait"


def _holder(lease: dict[str, Any]) -> Holder:
    spec = lease.get("spec") or {}
    return Holder(
        identity=spec.get("holderIdentity") or None,
        lease_seconds=int(spec.get("leaseDurationSeconds") or LEASE_SECONDS),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=lease["metadata"].get("resourceVersion"),
    )


def lease_spec(
    held: Holder | None,
    action: Action,
    me: str,
    now: datetime,
    lease_seconds: int,
    acquired: str | None,
) -> dict[str, Any]:
    """The Lease spec to write for `action` (acquire or renew): a take-over counts a
    transition and restarts acquireTime; a renewal keeps both."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    transitions = 0 if held is None else held.transitions + (action == "acquire")
    return {
        "holderIdentity": me,
        "leaseDurationSeconds": lease_seconds,
        "renewTime": stamp,
        "acquireTime": acquired if action == "renew" and acquired else stamp,
        "leaseTransitions": transitions,
    }


class Leadership:
    """Runs the election; `leading` is set while this replica may reconcile."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        *,
        timing: Timing | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.timing = timing or Timing()
        self.clock = clock
        self.leading = asyncio.Event()
        self.leading_since: datetime | None = None
        """When this replica last began to lead (wall clock): progress deadlines start there."""
        self.renewed_at = -float("inf")
        self._seen: tuple[Holder | None, float] = (None, clock())

    def may_write(self) -> bool:
        """The fence: true only within the renew deadline of our last renewal."""
        deadline = self.timing.renew_deadline_seconds
        return self.leading.is_set() and self.clock() - self.renewed_at < deadline

    async def run(self) -> None:
        t = self.timing
        while True:
            try:
                renewed = await asyncio.to_thread(self._attempt)
            except Exception as exc:  # an outage: keep trying; the fence does the rest
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
                renewed = False
            now = self.clock()
            if renewed:
                self.renewed_at = now
                if not self.leading.is_set():
                    log.info("leading: lease %s/%s held by %s", self.namespace, self.name,
                             self.identity)  # fmt: skip
                    self.leading_since = datetime.now(UTC)
                    self.leading.set()
            elif self.leading.is_set() and now - self.renewed_at >= t.renew_deadline_seconds:
                log.warning("lost lease %s/%s: not writing until it is ours again",
                            self.namespace, self.name)  # fmt: skip
                self.leading.clear()
            await asyncio.sleep(t.retry_seconds)

    def release(self) -> None:
        """On a clean shutdown: give the Lease up, so a successor need not wait it out."""
        if not self.may_write():
            return
        self.leading.clear()
        try:
            released = lease.release(
                self.kube, self.namespace, self.name, self.identity, LEASE_REQUEST_TIMEOUT
            )
        except ApiException as exc:  # it runs out by itself within a lease duration
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, exc)
            return
        if released:
            log.info("released lease %s/%s", self.namespace, self.name)
        else:
            log.info("lease %s/%s is no longer ours: nothing to release", self.namespace, self.name)

    def _attempt(self) -> bool:
        """One round of the election; true when we hold the Lease now."""
        found = lease.read(self.kube, self.namespace, self.name, LEASE_REQUEST_TIMEOUT)
        held = _holder(found) if found is not None else None
        if held != self._seen[0]:
            self._seen = (held, self.clock())
        action = decide(held, self.identity, self.clock() - self._seen[1])
        if action == "wait":
            return False
        acquired = ((found or {}).get("spec") or {}).get("acquireTime")
        spec = lease_spec(
            held, action, self.identity, datetime.now(UTC), self.timing.lease_seconds, acquired
        )
        version = held.resource_version if held is not None else None
        return lease.write(
            self.kube, self.namespace, self.name, spec, version, LEASE_REQUEST_TIMEOUT
        )
