"""kstatus' status computation for custom resources, written from its rules.

kstatus (sigs.k8s.io/cli-utils/pkg/kstatus) is what Flux's `wait: true` and
`healthChecks`, and `kubectl`-style apply tools, use to decide whether a
resource has reconciled. For a kind without built-in rules (every CRD) it
decides, in this order:

1. `metadata.deletionTimestamp` set -> Terminating;
2. `status.observedGeneration` present and not `metadata.generation` ->
   InProgress (the controller has not seen the latest spec);
3. the first condition, in list order, that is `Reconciling=True` ->
   InProgress, or `Stalled=True` -> Failed;
4. a `Ready` condition: True -> Current, False or Unknown -> InProgress;
5. otherwise Current (no known conditions: nothing to wait for).

A Go library cannot run in these tests; this module is the same decision
table, so that the Argo CD health check can be checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    TERMINATING = "Terminating"


@dataclass(frozen=True)
class Result:
    status: Status
    message: str


def compute(obj: dict[str, Any]) -> Result:
    """kstatus' Compute() for a resource without kind-specific rules."""
    meta: dict[str, Any] = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return Result(Status.TERMINATING, "Resource scheduled for deletion")
    status: dict[str, Any] = obj.get("status") or {}
    observed, generation = status.get("observedGeneration"), meta.get("generation")
    if observed is not None and generation is not None and observed != generation:
        return Result(
            Status.IN_PROGRESS,
            f"{obj.get('kind')} generation is {generation}, but latest observed generation "
            f"is {observed}",
        )
    conditions: list[dict[str, Any]] = status.get("conditions") or []
    for cond in conditions:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Reconciling":
            return Result(Status.IN_PROGRESS, cond.get("message") or cond.get("reason") or "")
        if cond.get("type") == "Stalled":
            return Result(Status.FAILED, cond.get("message") or cond.get("reason") or "")
    for cond in conditions:
        if cond.get("type") == "Ready":
            if cond.get("status") == "True":
                return Result(Status.CURRENT, "Resource is Ready")
            return Result(Status.IN_PROGRESS, cond.get("message") or cond.get("reason") or "")
    return Result(Status.CURRENT, "Resource is current")
