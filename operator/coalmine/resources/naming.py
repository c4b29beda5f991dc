"""Names, labels and owner references shared by every object the operator creates."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from coalmine.api.base import API_VERSION
from coalmine.api.deployment import ModelDeployment

Variant = Literal["stable", "canary"]
VARIANTS: tuple[Variant, ...] = ("stable", "canary")

MAX_NAME = 63

NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
DEPLOYMENT_LABEL = "coalmine.dev/deployment"
VERSION_LABEL = "coalmine.dev/version"
VARIANT_LABEL = "coalmine.dev/variant"
MANAGED_BY = "coalmine"

Manifest = dict[str, Any]


def child_name(parent: str, suffix: str = "") -> str:
    """`parent-suffix`, shortened with a hash when longer than 63 characters.

    Truncation keeps the suffix readable and the hash keeps distinct parents
    distinct; the result is a DNS-1035 label whenever `parent` is one.
    """
    full = f"{parent}-{suffix}" if suffix else parent
    if len(full) <= MAX_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    tail = f"-{digest}-{suffix}" if suffix else f"-{digest}"
    return parent[: MAX_NAME - len(tail)].rstrip("-.") + tail


def selector_labels(md: ModelDeployment, variant: Variant | None = None) -> dict[str, str]:
    """Labels that select a deployment's pods, of one variant or both; never change."""
    labels = {DEPLOYMENT_LABEL: md.metadata.name}
    if variant is not None:
        labels[VARIANT_LABEL] = variant
    return labels


def common_labels(
    md: ModelDeployment, variant: Variant | None = None, version: str | None = None
) -> dict[str, str]:
    """The DESIGN §4 labels; variant and version only on per-variant objects."""
    labels = {
        NAME_LABEL: md.metadata.name,
        MANAGED_BY_LABEL: MANAGED_BY,
        **selector_labels(md, variant),
    }
    if version is not None:
        labels[VERSION_LABEL] = version
    return labels


def owner_reference(md: ModelDeployment) -> dict[str, Any]:
    """Make `md` the controller of a child, so deleting it deletes the child."""
    if not md.metadata.uid:
        raise ValueError(f"ModelDeployment {md.metadata.name} has no uid; read it from the server")
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelDeployment",
        "name": md.metadata.name,
        "uid": md.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(name: str, md: ModelDeployment, labels: dict[str, str]) -> dict[str, Any]:
    """Metadata of a child object in the deployment's namespace."""
    meta: dict[str, Any] = {
        "name": name,
        "labels": labels,
        "ownerReferences": [owner_reference(md)],
    }
    if md.metadata.namespace:
        meta["namespace"] = md.metadata.namespace
    return meta


def deployment_name(md: ModelDeployment, variant: Variant) -> str:
    return child_name(md.metadata.name, variant)


def service_name(md: ModelDeployment, variant: Variant | None = None) -> str:
    """The stable endpoint is named like the ModelDeployment; variant Services get a suffix."""
    return child_name(md.metadata.name, variant or "")


def mirror_config_name(md: ModelDeployment) -> str:
    return child_name(md.metadata.name, "mirror")


def hpa_name(md: ModelDeployment) -> str:
    return child_name(md.metadata.name)
