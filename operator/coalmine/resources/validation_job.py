"""The Job that checks a ModelVersion's artifact where the serving pods would load it.

Running the serving image itself (`coalmine-serve --check`) proves exactly
what a serving pod needs: the URI is reachable from the cluster (pvc:// and
in-cluster URLs included), the digest matches, the format loads and a
self-test prediction succeeds.
"""

from __future__ import annotations

from typing import Any

from coalmine.api.base import API_VERSION
from coalmine.api.modelversion import ModelVersion
from coalmine.resources.deployment import (
    DEFAULT_IMAGE,
    MOUNT_ROOT,
    container_security_context,
    model_volumes,
    pod_security_context,
    server_signature,
)
from coalmine.resources.naming import MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL, Manifest, child_name

MODEL_VERSION_LABEL = "coalmine.dev/modelversion"
CHECK_DEADLINE_SECONDS = 300


def validation_job_name(mv: ModelVersion) -> str:
    """One check per ModelVersion (its spec is immutable). The uid is in the name, so a
    ModelVersion re-created under the same name never reads the old one's verdict."""
    return child_name(mv.metadata.name, f"check-{(mv.metadata.uid or '')[:8]}")


def build_validation_job(mv: ModelVersion, image: str | None = None) -> Manifest:
    """A run-once Job, owned by the ModelVersion, whose exit code is the verdict."""
    if not mv.metadata.uid:
        raise ValueError(f"ModelVersion {mv.metadata.name} has no uid; read it from the server")
    volumes, mounts = model_volumes(mv.spec.uri)
    env = {
        "COALMINE_NAME": mv.spec.model,
        "COALMINE_URI": mv.spec.uri,
        "COALMINE_SHA256": mv.spec.sha256,
        "COALMINE_FORMAT": mv.spec.format,
        "COALMINE_MODEL_VERSION": mv.spec.version,
        "COALMINE_MOUNT_ROOT": MOUNT_ROOT,
    }
    signature = server_signature(mv)
    if signature is not None:  # a signature the model contradicts fails the check, not the pods
        env["COALMINE_SIGNATURE"] = signature
    container: dict[str, Any] = {
        "name": "check",
        "image": image or mv.spec.image or DEFAULT_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": ["--check"],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    labels = {
        NAME_LABEL: mv.spec.model,
        MANAGED_BY_LABEL: MANAGED_BY,
        MODEL_VERSION_LABEL: mv.metadata.name,
    }
    meta: dict[str, Any] = {
        "name": validation_job_name(mv),
        "labels": labels,
        "ownerReferences": [
            {
                "apiVersion": API_VERSION,
                "kind": "ModelVersion",
                "name": mv.metadata.name,
                "uid": mv.metadata.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if mv.metadata.namespace:
        meta["namespace"] = mv.metadata.namespace
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": CHECK_DEADLINE_SECONDS,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": volumes,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security_context(),
                },
            },
        },
    }
