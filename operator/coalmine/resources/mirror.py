"""The mirror file of shadow steps: which canary the stable pods copy requests to, and how many.

The serving pods mount it from a ConfigMap (`mirror_volume`) and read it every second, so
a mirror step changes no pod template: no pod restarts, and the kubelet brings the new
content within its sync period (about a minute at most by default). The stable pods
copy, not a proxy or a Gateway, because only they hold both answers to compare.
"""

from __future__ import annotations

import json
from typing import Any

from coalmine.api.deployment import ModelDeployment
from coalmine.resources.naming import (
    Manifest,
    common_labels,
    mirror_config_name,
    object_meta,
    service_name,
)

MIRROR_DIR = "/etc/coalmine/mirror"
MIRROR_FILE = "mirror.json"
MIRROR_PATH = f"{MIRROR_DIR}/{MIRROR_FILE}"
SERVICE_PORT = 80


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


def mirror_volume(md: ModelDeployment) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod volume and container mount of the mirror file. Optional: a pod starts before
    the ConfigMap exists, and then mirrors nothing."""
    volume = {
        "name": "mirror",
        "configMap": {"name": mirror_config_name(md), "optional": True},
    }
    mount = {"name": "mirror", "mountPath": MIRROR_DIR, "readOnly": True}
    return volume, mount
