"""Read what the operator's children look like now, reduced to what decisions need."""

from __future__ import annotations

from typing import Any

from coalmine.api.deployment import ModelDeployment
from coalmine.kube.client import Kube
from coalmine.resources import Variant
from coalmine.resources.deployment import MODEL_VERSION_ANNOTATION, TEMPLATE_HASH_ANNOTATION
from coalmine.resources.naming import deployment_name, selector_labels
from coalmine.rollout.observation import VariantObservation

CRASH_REASONS = {"CrashLoopBackOff", "Error", "CreateContainerConfigError", "ErrImageNeverPull"}


def variant_pods(kube: Kube, md: ModelDeployment, variant: Variant) -> list[dict[str, Any]]:
    ns = md.metadata.namespace or "default"
    pods = kube.list("Pod", ns, selector_labels(md, variant))
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions", []) or []
    )


def observe_variant(
    kube: Kube, md: ModelDeployment, variant: Variant
) -> tuple[VariantObservation | None, dict[str, Any] | None]:
    """The variant's Deployment and pods as a VariantObservation (None: no Deployment)."""
    ns = md.metadata.namespace or "default"
    dep = kube.get("Deployment", ns, deployment_name(md, variant))
    if dep is None:
        return None, None
    spec, status = dep.get("spec", {}), dep.get("status", {})
    replicas = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas", 0) or 0)
    rolled_out = (
        status.get("observedGeneration") == dep["metadata"].get("generation")
        and int(status.get("updatedReplicas", 0) or 0) == replicas
        and int(status.get("replicas", 0) or 0) == replicas
        and ready == replicas
    )
    restarts, crash, message = 0, False, None
    for pod in variant_pods(kube, md, variant):
        for cs in pod.get("status", {}).get("containerStatuses", []) or []:
            restarts = max(restarts, int(cs.get("restartCount", 0)))
            state, last = cs.get("state", {}), cs.get("lastState", {})
            waiting = state.get("waiting", {}).get("reason")
            terminated = state.get("terminated") or last.get("terminated")
            if waiting in CRASH_REASONS or (terminated and terminated.get("exitCode", 0) != 0):
                crash = True
            if terminated and terminated.get("message"):
                message = str(terminated["message"]).strip()
    annotations = dep["metadata"].get("annotations", {})
    obs = VariantObservation(
        model_version=annotations.get(MODEL_VERSION_ANNOTATION, ""),
        template_hash=annotations.get(TEMPLATE_HASH_ANNOTATION, ""),
        replicas=replicas,
        ready_replicas=ready,
        rolled_out=rolled_out,
        restarts=restarts,
        crash_looping=crash,
        failure_message=message,
    )
    return obs, dep
