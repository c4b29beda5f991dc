"""The serving Deployment of one variant of a ModelDeployment."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from coalmine.api.deployment import ModelDeployment, Pin
from coalmine.api.modelversion import ModelVersion
from coalmine.resources.naming import (
    Manifest,
    Variant,
    common_labels,
    deployment_name,
    mirror_config_name,
    object_meta,
    selector_labels,
)

DEFAULT_IMAGE = "coalmine/serving:0.1.0"
CONTAINER = "server"
PORT = 8080
PORT_NAME = "http"
GRPC_PORT = 8081  # the Open Inference Protocol's gRPC port, as KServe and MLServer number it
GRPC_PORT_NAME = "grpc"
RUN_AS = 65532  # the "nonroot" user of distroless-style images
MODEL_VERSION_ANNOTATION = "coalmine.dev/model-version"
TEMPLATE_HASH_ANNOTATION = "coalmine.dev/template-hash"
MOUNT_ROOT = "/mnt/models"  # where the server resolves pvc://CLAIM/PATH
MIRROR_DIR = "/etc/coalmine/mirror"
MIRROR_FILE = "mirror.json"
MIRROR_PATH = f"{MIRROR_DIR}/{MIRROR_FILE}"
"""Where serving pods read the mirror file of shadow steps (`--mirror-config`)."""
TERMINATION_GRACE_SECONDS = 30
DEFAULT_REQUESTS = {"cpu": "100m", "memory": "256Mi"}


def build_deployment(
    md: ModelDeployment,
    mv: ModelVersion,
    variant: Variant,
    replicas: int | None,
    pin: Pin | None = None,
) -> Manifest:
    """The Deployment serving `mv` as `variant` of `md`, as `pin` fixed it (by default, as the
    live spec asks now).

    `replicas=None` leaves the count out, so a HorizontalPodAutoscaler owns it
    under server-side apply. The selector holds only the deployment and
    variant, because a Deployment's selector can never change while versions do.
    """
    pin = pin or pin_for(md, mv)
    labels = common_labels(md, variant, mv.spec.version)
    meta = object_meta(deployment_name(md, variant), md, labels)
    meta["annotations"] = {
        MODEL_VERSION_ANNOTATION: mv.metadata.name,
        TEMPLATE_HASH_ANNOTATION: pin.template_hash,
    }
    template = pod_template(md, mv, variant, pin)
    template["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION] = pin.template_hash
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(md, variant)},
        "revisionHistoryLimit": 2,
        # Never below the desired capacity: new pods must be Ready before old ones go.
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        },
        "template": template,
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def pod_template(md: ModelDeployment, mv: ModelVersion, variant: Variant, pin: Pin) -> Manifest:
    """The pod template of `variant`: `mv`'s artifact with the pinned image, resources and
    server knobs."""
    return {
        "metadata": {
            "labels": common_labels(md, variant, mv.spec.version),
            "annotations": {
                MODEL_VERSION_ANNOTATION: mv.metadata.name,
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(PORT),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": _pod_spec(md, mv, variant, pin),
    }


def pin_for(md: ModelDeployment, mv: ModelVersion) -> Pin:
    """What a revision of `md` serving `mv` would pin, as the spec reads now."""
    draft = Pin(
        model_version_uid=mv.metadata.uid or "",
        sha256=mv.spec.sha256,
        image=md.spec.serving.image or mv.spec.image or DEFAULT_IMAGE,
        resources=md.spec.resources,
        serving=md.spec.serving,
        template_hash="-",
    )
    return draft.model_copy(update={"template_hash": template_hash(md, mv, draft)})


def template_hash(md: ModelDeployment, mv: ModelVersion, pin: Pin) -> str:
    """Hash of the pod template `pin` renders to (as the stable variant, so canary and stable
    of one revision share it); any change of what the pods run changes it."""
    template = pod_template(md, mv, "stable", pin)
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def renders(md: ModelDeployment, mv: ModelVersion | None, pin: Pin) -> bool:
    """Whether `pin` can be rebuilt from `mv` exactly as it was pinned: the same ModelVersion
    (uid) and a template that hashes the same (this operator builds it as the one that pinned
    it did)."""
    return (
        mv is not None
        and (mv.metadata.uid or "") == pin.model_version_uid
        and template_hash(md, mv, pin) == pin.template_hash
    )


def _pod_spec(md: ModelDeployment, mv: ModelVersion, variant: Variant, pin: Pin) -> Manifest:
    volumes, mounts = model_volumes(mv.spec.uri)
    mirror, mirror_mount = mirror_volume(md)
    volumes.append(mirror)
    mounts.append(mirror_mount)
    container = {
        "name": CONTAINER,
        # The deployment's image wins over the version's, which wins over the default.
        "image": pin.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [
            {"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"},
            {"name": GRPC_PORT_NAME, "containerPort": GRPC_PORT, "protocol": "TCP"},
        ],
        "env": _env(md, mv, variant, pin),
        "resources": _resources(pin),
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


def mirror_volume(md: ModelDeployment) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod volume and container mount of the mirror file of shadow steps
    (resources/mirror.py). Optional: a pod starts before the ConfigMap exists, and then
    mirrors nothing."""
    volume = {
        "name": "mirror",
        "configMap": {"name": mirror_config_name(md), "optional": True},
    }
    mount = {"name": "mirror", "mountPath": MIRROR_DIR, "readOnly": True}
    return volume, mount


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


def _env(md: ModelDeployment, mv: ModelVersion, variant: Variant, pin: Pin) -> list[dict[str, str]]:
    serving = pin.serving
    values = {
        # Clients address the model by the ModelDeployment's name, whatever the version.
        "COALMINE_NAME": md.metadata.name,
        "COALMINE_URI": mv.spec.uri,
        "COALMINE_SHA256": pin.sha256,
        "COALMINE_FORMAT": mv.spec.format,
        "COALMINE_MODEL_VERSION": mv.spec.version,
        "COALMINE_VARIANT": variant,
        "COALMINE_PORT": str(PORT),
        "COALMINE_GRPC_PORT": str(GRPC_PORT),
        "COALMINE_MOUNT_ROOT": MOUNT_ROOT,
        "COALMINE_MIRROR_CONFIG": MIRROR_PATH,
        "COALMINE_WORKERS": str(serving.workers),
        "COALMINE_MAX_BATCH_SIZE": str(serving.max_batch_size),
        "COALMINE_MAX_BATCH_WAIT_MS": str(serving.max_batch_wait_ms),
    }
    if serving.max_queue_ms is not None:  # unset leaves pod templates as they were
        values["COALMINE_MAX_QUEUE_MS"] = str(serving.max_queue_ms)
    signature = server_signature(mv)
    if signature is not None:
        values["COALMINE_SIGNATURE"] = signature
    reference = drift_reference(mv)
    if reference is not None:
        values["COALMINE_REFERENCE"] = json.dumps(reference, separators=(",", ":"))
    return [{"name": k, "value": v} for k, v in values.items()]


def server_signature(mv: ModelVersion) -> str | None:
    """The signature as the server reads it (`--signature`), when it names one feature per input.

    The server matches request inputs to features by these names. An input with a wider
    shape (a whole feature vector under one name) cannot be matched that way, so such a
    signature is not passed and the server takes inputs by position.
    """
    signature = mv.spec.signature
    if signature is None or not all(_one_feature(i.shape) for i in signature.inputs):
        return None
    inputs = [{"name": i.name, "datatype": i.datatype} for i in signature.inputs]
    return json.dumps({"inputs": inputs}, separators=(",", ":"))


def _one_feature(shape: list[int] | None) -> bool:
    """A scalar per row: no shape, or a shape of ones beside at most one variable batch axis."""
    if shape is None:
        return True
    return shape.count(-1) <= 1 and all(d in (1, -1) for d in shape)


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


def _resources(pin: Pin) -> dict[str, Any]:
    """The user's resources; default requests so the scheduler and an HPA have a baseline.

    A resource with a limit and no request gets no default request: the Pod API then
    requests the limit, where a default above a small limit would be refused.
    """
    resources = pin.resources
    limits = dict(resources.limits) if resources and resources.limits else {}
    if resources and resources.requests:
        requests = dict(resources.requests)
    else:
        requests = {k: v for k, v in DEFAULT_REQUESTS.items() if k not in limits}
    out: dict[str, Any] = {"requests": requests} if requests else {}
    if limits:
        out["limits"] = limits
    return out


OVERLOADED_PROBE_SECONDS = 10
"""How long an answer to a liveness or readiness probe may take (see `_probes`)."""


def _probes() -> dict[str, Any]:
    """Startup gives model loading up to two minutes; after that, liveness only restarts a
    hung process, and readiness drops a pod from endpoints within ~4 s of answering unready
    (as it does while draining).

    Liveness and readiness wait up to OVERLOADED_PROBE_SECONDS for an answer: an overloaded
    pod (a CPU-limited one at its limit, above all) answers its probes late, behind the
    requests it is shedding, and one that fails its probes then would leave the Service,
    pushing its load onto the others, or be restarted, while the HPA, which counts unready
    pods as idle, would not scale out."""

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
            "timeoutSeconds": OVERLOADED_PROBE_SECONDS,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            **http_get("/v2/health/ready"),
            "periodSeconds": 2,
            "timeoutSeconds": OVERLOADED_PROBE_SECONDS,
            "successThreshold": 1,
            "failureThreshold": 2,
        },
    }
