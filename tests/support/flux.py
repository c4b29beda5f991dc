"""Flux in the test cluster, fed from a Git repository on this host (issue 18).

`install` builds source-controller and kustomize-controller from Go modules
(hack/flux/build.sh, cached after the first build), loads their images and applies their
CRDs and Deployments; the rest builds the objects a user writes and reads their health.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import yaml

from tests.support.cluster import REPO, Cluster
from tests.support.crds import apply_established, apply_once_mapped
from tests.support.gitops import BRANCH
from tests.support.images import IMAGES, build_with_manifests
from tests.support.steps import to_stderr

NAMESPACE = "flux-system"
HEALTH_CHECKS = REPO / "gitops" / "flux" / "health-checks.yaml"
CONTROLLERS = ("source-controller", "kustomize-controller")
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"  # what `flux reconcile` sets


def install(cluster: Cluster, say: Callable[[str], None] = to_stderr) -> None:
    """Build (or take from the cache) and start Flux's two controllers; wait until Available."""
    manifests = build_with_manifests("flux", say)
    for name in CONTROLLERS:
        cluster.load_image(IMAGES / f"coalmine-flux-{name}.tar", say)
    apply_established(cluster, manifests / "crds")
    apply_once_mapped(cluster, manifests / "controllers.yaml")
    for name in CONTROLLERS:
        cluster.kubectl(
            "-n", NAMESPACE, "rollout", "status", f"deployment/{name}", "--timeout=180s",
            timeout=200,
        )  # fmt: skip


def git_repository(name: str, url: str, interval: str) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"url": url, "interval": interval, "ref": {"branch": BRANCH}, "timeout": "30s"},
    }


def kustomization(
    name: str, source: str, path: str, target_namespace: str, interval: str, timeout: str
) -> dict[str, Any]:
    """Applies `path` of the GitRepository `source` into `target_namespace` and waits for
    every object it applied, Coalmine's read with gitops/flux/health-checks.yaml: what
    docs/gitops.md tells users to write."""
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "interval": interval,
            "path": path,
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": source},
            "targetNamespace": target_namespace,
            "wait": True,
            "timeout": timeout,
            "healthCheckExprs": yaml.safe_load(HEALTH_CHECKS.read_text()),
        },
    }


def ready(obj: dict[str, Any]) -> dict[str, Any]:
    """The Ready condition of a Flux object ({} before the controller wrote one)."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


def applied_sha(obj: dict[str, Any]) -> str:
    """The commit a Kustomization last applied (`main@sha1:SHA`): its SHA, or ''."""
    revision = str((obj.get("status") or {}).get("lastAttemptedRevision") or "")
    return revision.rpartition(":")[2]


class Kustomization:
    """One GitRepository and one Kustomization that applies its deploy/ to `namespace`."""

    def __init__(self, cluster: Cluster, url: str, namespace: str, timeout: str) -> None:
        self.cluster, self.url, self.namespace, self.timeout = cluster, url, namespace, timeout
        self.name = f"models-{namespace}"

    def start(self) -> None:
        self.cluster.apply(
            git_repository(self.name, self.url, interval="5s"),
            kustomization(self.name, self.name, "./deploy", self.namespace,
                          interval="10s", timeout=self.timeout),
        )  # fmt: skip

    def stop(self) -> None:
        self.cluster.kubectl(
            "-n", NAMESPACE, "delete", "kustomization,gitrepository", self.name,
            "--wait=false", check=False,
        )  # fmt: skip

    def reconcile_now(self) -> str:
        """Ask for a reconcile at once, as `flux reconcile kustomization` does; the token."""
        token = str(time.time_ns())
        self.cluster.kubectl(
            "-n", NAMESPACE, "annotate", "--overwrite", "kustomization", self.name,
            f"{REQUESTED_AT}={token}",
        )  # fmt: skip
        return token

    def get(self) -> dict[str, Any]:
        return self.cluster.get("kustomization", self.name, NAMESPACE)

    def describe(self, obj: dict[str, Any]) -> str:
        cond = ready(obj)
        return (
            f"Kustomization Ready={cond.get('status', '-')} {cond.get('reason', '')}: "
            f"{cond.get('message', '')[:140]}"
        )
