"""Readiness and crash-loop judgements on a variant's observation."""

from __future__ import annotations

from coalmine.rollout.observation import VariantObservation


def is_ready(variant: VariantObservation | None, model_version: str, *, serving: bool) -> bool:
    """Running `model_version`, converged, and with a ready pod when it must be `serving`
    (a canary always must; a stable may be scaled to zero on purpose)."""
    return (
        variant is not None
        and variant.model_version == model_version
        and variant.rolled_out
        and variant.ready_replicas >= (1 if serving else min(1, variant.replicas))
    )


def crash_loop(variant: VariantObservation | None, model_version: str, limit: int) -> str | None:
    """Why the variant counts as crash-looping, or None.

    `limit` restarts are tolerated; the next failure trips it, whether it shows as
    one more restart or as a container that is down right now after `limit`
    restarts. So a canary that cannot start at all is caught after limit + 1
    failed starts, long before the progress deadline.
    """
    if variant is None or variant.model_version != model_version:
        return None
    if variant.restarts > limit or (variant.crash_looping and variant.restarts >= limit):
        detail = f": {variant.failure_message}" if variant.failure_message else ""
        return f"crash-looping: {variant.restarts} restarts (limit {limit}){detail}"
    return None
