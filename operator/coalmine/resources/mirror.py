"""The mirror file of shadow steps: which canary the stable pods copy requests to, and how many.

The serving pods mount it from a ConfigMap (deployment.py's `mirror_volume`) and read
it every second, so a mirror step changes no pod template: no pod restarts, and the
kubelet brings the new content within its sync period (about a minute at most by
default). The stable pods copy, not a proxy or a Gateway, because only they hold both
answers to compare.
"""

from __future__ import annotations

import json
from typing import Any

from coalmine.api.deployment import ModelDeployment
from coalmine.resources.deployment import MIRROR_FILE
from coalmine.resources.naming import (
    Manifest,
    common_labels,
    mirror_config_name,
    object_meta,
    service_name,
)
from coalmine.resources.service import SERVICE_PORT


def build_mirror_config(md: ModelDeployment, percent: int, canary: str | None) -> Manifest:
    """The ConfigMap telling stable pods to copy `percent` of requests to the canary Service
    (0: copy nothing); `canary` names the canary's ModelVersion in their metrics."""
    namespace = md.metadata.namespace or "default"
    doc: dict[str, Any] = {"percent": percent if canary is not None else 0}
    if canary is not None and percent > 0:
        doc["url"] = f"http://{service_name(md, 'canary')}.{namespace}.svc:{SERVICE_PORT}"
        doc["canary"] = canary
        doc["examples"] = md.spec.shadow.examples
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(mirror_config_name(md), md, common_labels(md)),
        "data": {MIRROR_FILE: json.dumps(doc, sort_keys=True, separators=(",", ":"))},
    }
