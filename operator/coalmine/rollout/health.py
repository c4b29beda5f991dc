"""Readiness and crash-loop judgements on a variant's observation."""

from __future__ import annotations

from coalmine.api.deployment import VariantStatus
from coalmine.rollout.observation import VariantObservation
from coalmine.rollout.revision import runs


def is_ready(observed: VariantObservation | None, variant: VariantStatus, *, serving: bool) -> bool:
    """Running `variant`'s pin, converged, and with a ready pod when it must be `serving`
    (a canary always must; a stable may be scaled to zero on purpose)."""
    return (
        observed is not None
        and runs(observed, variant)
        and observed.rolled_out
        and observed.ready_replicas >= (1 if serving else min(1, observed.replicas))
    )


def crash_loop(
    observed: VariantObservation | None, variant: VariantStatus, limit: int
) -> str | None:
    """Why the variant counts as crash-looping, or None.

    `limit` restarts are tolerated; the next failure trips it, whether it shows as
    one more restart or as a container that is down right now after `limit`
    restarts. So a canary that cannot start at all is caught after limit + 1
    failed starts, long before the progress deadline.
    """
    if observed is None or not runs(observed, variant):
        return None
    if observed.restarts > limit or (observed.crash_looping and observed.restarts >= limit):
        detail = f": {observed.failure_message}" if observed.failure_message else ""
        return f"crash-looping: {observed.restarts} restarts (limit {limit}){detail}"
    return None
