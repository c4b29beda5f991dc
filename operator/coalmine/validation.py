"""Pure verdict on a ModelVersion from its validation Job's observed state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coalmine.api.base import Condition
from coalmine.api.conditions import set_condition
from coalmine.api.modelversion import ModelVersion, ModelVersionStatus


@dataclass(frozen=True)
class ValidationPlan:
    status: ModelVersionStatus
    create_job: bool
    event: tuple[str, str, str] | None  # (type, reason, message) when the phase changes


def _job_condition(job: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in job.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return dict(cond)
    return None


def _conditions(
    old: ModelVersionStatus, phase: str, reason: str, message: str, now: datetime, gen: int | None
) -> list[Condition]:
    """kstatus: Reconciling while checking, Stalled when Invalid, Ready when Validated."""
    values = {
        "Ready": phase == "Validated",
        "Reconciling": phase == "Pending",
        "Stalled": phase == "Invalid",
    }
    result = list(old.conditions)
    for type_, value in values.items():
        result = set_condition(
            result, type_, "True" if value else "False", reason, message, now, gen
        )
    return result


def plan_validation(
    mv: ModelVersion, job: dict[str, Any] | None, failure_reason: str | None, now: datetime
) -> ValidationPlan:
    """Pending until the check Job ends; Validated on success, Invalid with the reason on failure.

    `failure_reason` is the check container's termination message: the one line
    the serving image writes when it refuses an artifact.
    """
    old = mv.status or ModelVersionStatus()
    gen = mv.metadata.generation
    if old.phase in ("Validated", "Invalid") and old.observed_generation == gen:
        return ValidationPlan(old, create_job=False, event=None)

    if job is None or not (_job_condition(job, "Complete") or _job_condition(job, "Failed")):
        message = "checking the artifact: digest, format and a self-test prediction"
        conds = _conditions(old, "Pending", "Checking", message, now, gen)
        status = ModelVersionStatus(
            observed_generation=gen, phase="Pending", message=message, conditions=conds
        )
        return ValidationPlan(status, create_job=job is None, event=None)

    if _job_condition(job, "Complete"):
        message = f"artifact verified: sha256 {mv.spec.sha256[:12]}…, {mv.spec.format} loads"
        conds = _conditions(old, "Validated", "Validated", message, now, gen)
        status = ModelVersionStatus(
            observed_generation=gen,
            phase="Validated",
            verified_sha256=mv.spec.sha256,
            message=message,
            conditions=conds,
        )
        return ValidationPlan(status, False, ("Normal", "Validated", message))

    failed = _job_condition(job, "Failed") or {}
    reason = (failure_reason or "").strip().splitlines()
    message = reason[-1] if reason else f"artifact check failed: {failed.get('message', '')}"
    conds = _conditions(old, "Invalid", "Invalid", message, now, gen)
    status = ModelVersionStatus(
        observed_generation=gen, phase="Invalid", message=message[:4096], conditions=conds
    )
    return ValidationPlan(status, False, ("Warning", "Invalid", message))
