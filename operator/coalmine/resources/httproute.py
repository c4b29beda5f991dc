"""The HTTPRoute of the `gatewayAPI` router: exact weights.

One rule sends every path to the per-variant Services with the canary's weight.
It never mirrors: a Gateway discards a mirrored response, so nothing could
compare it; in mirror steps the stable pods copy requests to the canary
themselves (resources/mirror.py). Fields the Gateway API CRD would default
(group, kind, the catch-all match) are written out, so the object the API
server stores equals the one applied and server-side apply sees no drift.
"""

from __future__ import annotations

from typing import Any

from coalmine.api.deployment import ModelDeployment
from coalmine.resources.naming import Manifest, Variant, common_labels, object_meta, service_name
from coalmine.resources.service import SERVICE_PORT

GATEWAY_GROUP = "gateway.networking.k8s.io"


def _backend(md: ModelDeployment, variant: Variant) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": service_name(md, variant), "port": SERVICE_PORT}


def _parent(name: str, namespace: str | None, section: str | None, port: int | None) -> Manifest:
    parent: dict[str, Any] = {"group": GATEWAY_GROUP, "kind": "Gateway", "name": name}
    if namespace is not None:
        parent["namespace"] = namespace
    if section is not None:
        parent["sectionName"] = section
    if port is not None:
        parent["port"] = port
    return parent


def distinct_parents(refs: list[Manifest]) -> list[Manifest]:
    """The refs the Gateway API accepts for the same attachment: no duplicates, and a whole
    Gateway instead of some of its listeners (its rule: several refs to one Gateway must each
    name a distinct listener)."""
    whole = {
        (r.get("namespace"), r["name"]) for r in refs if "sectionName" not in r and "port" not in r
    }
    kept: list[Manifest] = []
    for ref in refs:
        narrowed = "sectionName" in ref or "port" in ref
        if ref in kept or (narrowed and (ref.get("namespace"), ref["name"]) in whole):
            continue
        kept.append(ref)
    return kept


def build_httproute(md: ModelDeployment, canary_weight: int | None) -> Manifest:
    """The route of `md`; `canary_weight` None leaves the canary out of it entirely."""
    settings = md.spec.traffic.gateway_api
    if settings is None:
        raise ValueError(f"ModelDeployment {md.metadata.name} has no traffic.gatewayAPI settings")
    parent_refs = distinct_parents(
        [
            _parent(ref.name, ref.namespace, ref.section_name, ref.port)
            for ref in settings.parent_refs
        ]
    )

    backends = [{**_backend(md, "stable"), "weight": 100 - (canary_weight or 0)}]
    if canary_weight is not None:
        backends.append({**_backend(md, "canary"), "weight": canary_weight})
    rule: dict[str, Any] = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": backends,
    }

    spec: dict[str, Any] = {"parentRefs": parent_refs, "rules": [rule]}
    if settings.hostnames:
        spec["hostnames"] = list(settings.hostnames)
    return {
        "apiVersion": f"{GATEWAY_GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": object_meta(service_name(md), md, common_labels(md)),
        "spec": spec,
    }
