"""Kubernetes Events on the operator's resources, so `kubectl describe` tells the story."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from typing import Any

from coalmine.kube.client import Kube

COMPONENT = "coalmine-operator"


def post_event(
    kube: Kube,
    involved: dict[str, Any],
    *,
    type_: str,
    reason: str,
    message: str,
    now: datetime,
) -> None:
    """Create one Event, named after its content so a retried reconcile posts it once."""
    meta = involved["metadata"]
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hashlib.sha256(f"{meta['uid']}{reason}{message}{stamp}".encode()).hexdigest()[:10]
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{digest}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": os.environ.get("HOSTNAME", COMPONENT),
    }
    kube.create(body)
