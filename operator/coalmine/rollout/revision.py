"""Revisions are what serves: which pin a variant runs, whether the spec still asks for it,
and what changed from one revision to the next."""

from __future__ import annotations

from coalmine.api.deployment import Change, ModelDeployment, Pin, VariantStatus
from coalmine.api.modelversion import ModelVersion
from coalmine.resources.deployment import pin_for
from coalmine.rollout import reasons
from coalmine.rollout.observation import VariantObservation


def desired_pin(md: ModelDeployment, target: ModelVersion | None) -> Pin | None:
    """The pin the spec asks for now; None when its ModelVersion does not exist."""
    return pin_for(md, target) if target is not None else None


def asks_for(md: ModelDeployment, desired: Pin | None, variant: VariantStatus) -> bool:
    """Whether the spec asks for exactly what `variant` serves. With the target gone only the
    name can be compared (the rollout then ends on the deleted ModelVersion)."""
    if desired is None or variant.pin is None:
        return variant.model_version == md.spec.model_version
    return variant.pin.template_hash == desired.template_hash


def runs(observed: VariantObservation | None, variant: VariantStatus) -> bool:
    """Whether the observed Deployment was built from `variant`'s pin."""
    if observed is None:
        return False
    if variant.pin is None:
        return observed.model_version == variant.model_version
    return observed.template_hash == variant.pin.template_hash


def changes(before: VariantStatus | None, name: str, pin: Pin) -> list[Change]:
    """What makes `pin` (serving ModelVersion `name`) a new revision after `before`."""
    if before is None:
        return []
    if before.pin is None:
        return ["modelVersion"] if before.model_version != name else ["template"]
    old = before.pin
    found: list[Change] = []
    if before.model_version != name:
        found.append("modelVersion")
    elif (old.model_version_uid, old.sha256) != (pin.model_version_uid, pin.sha256):
        found.append("artifact")
    if old.resources != pin.resources:
        found.append("resources")
    if old.serving.model_copy(update={"image": None}) != pin.serving.model_copy(
        update={"image": None}
    ):
        found.append("serving")
    if old.image != pin.image:
        found.append("image")
    return found or ["template"]


def pinned_problem(variant: VariantStatus, found: ModelVersion | None) -> tuple[str, str] | None:
    """(reason, message) when the ModelVersion `variant` serves is gone or is another one now.
    Its pods keep serving the pinned digest either way."""
    pin = variant.pin
    if pin is None:
        return None
    what = f"{variant.model_version} (sha256 {pin.sha256[:12]})"
    if found is None:
        return (
            reasons.MODEL_VERSION_DELETED,
            f"ModelVersion {what} was deleted while it serves; its pods keep serving the pinned"
            " artifact",
        )
    if (found.metadata.uid or "") != pin.model_version_uid:
        return (
            reasons.MODEL_VERSION_REPLACED,
            f"ModelVersion {variant.model_version} was re-created (sha256"
            f" {found.spec.sha256[:12]}); its pods keep serving the validated {what} until a"
            " new revision is promoted",
        )
    return None
