"""The serving Deployment of one variant of a ModelDeployment."""

from __future__ import annotations

import json
from typing import Any

from coalmine.api.deployment import ModelDeployment
from coalmine.api.modelversion import ModelVersion
from coalmine.resources.naming import (
    Manifest,
    Variant,
    common_labels,
    deployment_name,
    object_meta,
    selector_labels,
)

DEFAULT_IMAGE = "coalmine/serving:0.1.0"
CONTAINER = "server"
PORT = 8080
PORT_NAME = "http"
RUN_AS = 65532  # the "nonroot" user of distroless-style images
MODEL_VERSION_ANNOTATION = "coalmine.dev/model-version"
MOUNT_ROOT = "/mnt/models"  # where the server resolves pvc://CLAIM/PATH
TERMINATION_GRACE_SECONDS = 30
DEFAULT_REQUESTS = {"cpu": "100m", "memory": "256Mi"}


def build_deployment(
    md: ModelDeployment, mv: ModelVersion, variant: Variant, replicas: int | None
) -> Manifest:
    """The Deployment serving `mv` as `variant` of `md`.

    `replicas=None` leaves the count out, so a HorizontalPodAutoscaler owns it
    under server-side apply. The selector holds only the deployment and
    variant, because a Deployment's selector can never change while versions do.
    """
    labels = common_labels(md, variant, mv.spec.version)
    meta = object_meta(deployment_name(md, variant), md, labels)
    meta["annotations"] = {MODEL_VERSION_ANNOTATION: mv.metadata.name}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(md, variant)},
        "revisionHistoryLimit": 2,
        # Never below the desired capacity: new pods must be Ready before old ones go.
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        },
        "template": {
            "metadata": {
                "labels": labels,
                "annotations": {
                    MODEL_VERSION_ANNOTATION: mv.metadata.name,
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": str(PORT),
                    "prometheus.io/path": "/metrics",
                },
            },
            "spec": _pod_spec(md, mv, variant),
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def serving_image(md: ModelDeployment, mv: ModelVersion) -> str:
    """The deployment's image wins over the version's, which wins over the default."""
    return md.spec.serving.image or mv.spec.image or DEFAULT_IMAGE


def _pod_spec(md: ModelDeployment, mv: ModelVersion, variant: Variant) -> dict[str, Any]:
    volumes, mounts = model_volumes(mv.spec.uri)
    container = {
        "name": CONTAINER,
        "image": serving_image(md, mv),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "env": _env(md, mv, variant),
        "resources": _resources(md),
        **_probes(),
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    }
    return {
        "containers": [container],
        "volumes": volumes,
        # The server drains in-flight requests on SIGTERM; this bounds the drain.
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
    }


def model_volumes(uri: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes and mounts for a writable /tmp and, for pvc:// URIs, the model's claim."""
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    claim = _pvc_claim(uri)
    if claim is not None:
        volumes.append(
            {"name": "model", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        )
        mounts.append({"name": "model", "mountPath": MOUNT_ROOT, "readOnly": True})
    return volumes, mounts


def container_security_context() -> dict[str, Any]:
    """The Pod Security Standards' restricted profile, per container."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _env(md: ModelDeployment, mv: ModelVersion, variant: Variant) -> list[dict[str, str]]:
    serving = md.spec.serving
    values = {
        # Clients address the model by the ModelDeployment's name, whatever the version.
        "COALMINE_NAME": md.metadata.name,
        "COALMINE_URI": mv.spec.uri,
        "COALMINE_SHA256": mv.spec.sha256,
        "COALMINE_FORMAT": mv.spec.format,
        "COALMINE_MODEL_VERSION": mv.spec.version,
        "COALMINE_VARIANT": variant,
        "COALMINE_PORT": str(PORT),
        "COALMINE_MOUNT_ROOT": MOUNT_ROOT,
        "COALMINE_WORKERS": str(serving.workers),
        "COALMINE_MAX_BATCH_SIZE": str(serving.max_batch_size),
        "COALMINE_MAX_BATCH_WAIT_MS": str(serving.max_batch_wait_ms),
    }
    reference = drift_reference(mv)
    if reference is not None:
        values["COALMINE_REFERENCE"] = json.dumps(reference, separators=(",", ":"))
    return [{"name": k, "value": v} for k, v in values.items()]


def drift_reference(mv: ModelVersion) -> dict[str, Any] | None:
    """The reference in the server's format: one histogram per input, in input order.

    The server matches histograms to columns by position, so they are ordered
    like the signature's inputs when there is one.
    """
    if mv.spec.reference is None:
        return None
    features = mv.spec.reference.features
    if mv.spec.signature is not None:
        order = {spec.name: i for i, spec in enumerate(mv.spec.signature.inputs)}
        features = sorted(features, key=lambda f: order.get(f.name, len(order)))
    return {
        "features": [
            {"name": f.name, "edges": f.bin_edges, "expected": f.fractions} for f in features
        ]
    }


def _pvc_claim(uri: str) -> str | None:
    if not uri.startswith("pvc://"):
        return None
    return uri.removeprefix("pvc://").split("/", 1)[0]


def _resources(md: ModelDeployment) -> dict[str, Any]:
    """The user's resources; default requests so the scheduler and an HPA have a baseline."""
    resources = md.spec.resources
    requests = resources.requests if resources and resources.requests else DEFAULT_REQUESTS
    out: dict[str, Any] = {"requests": dict(requests)}
    if resources and resources.limits:
        out["limits"] = dict(resources.limits)
    return out


def _probes() -> dict[str, Any]:
    """Startup gives model loading up to two minutes; after that, liveness only restarts a
    hung process, and readiness drops a pod from endpoints within ~4 s of going unready."""

    def http_get(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": PORT_NAME}}

    return {
        "startupProbe": {
            **http_get("/v2/health/live"),
            "periodSeconds": 2,
            "timeoutSeconds": 2,
            "failureThreshold": 60,
        },
        "livenessProbe": {
            **http_get("/v2/health/live"),
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            **http_get("/v2/health/ready"),
            "periodSeconds": 2,
            "timeoutSeconds": 2,
            "successThreshold": 1,
            "failureThreshold": 2,
        },
    }
