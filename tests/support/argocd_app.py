"""Argo CD in the test cluster, fed from a Git repository on this host (issue 18).

`install` builds Argo CD's application controller and repo server from Go modules
(hack/argocd/build.sh, cached after the first build), loads the image, applies the CRDs
and the minimal install, and loads gitops/argocd/health.lua into `argocd-cm` the way
docs/gitops.md tells users to. `Application` is one Application that syncs a repository's
deploy/ into a namespace, and reads the health Argo CD shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.support.cluster import REPO, Cluster
from tests.support.crds import apply_established, apply_once_mapped
from tests.support.gitops import BRANCH
from tests.support.images import IMAGES, build_with_manifests
from tests.support.steps import to_stderr

NAMESPACE = "argocd"
HEALTH_LUA = REPO / "gitops" / "argocd" / "health.lua"
KINDS = ("ModelDeployment", "ModelVersion")
REFRESH = "argocd.argoproj.io/refresh"  # what `argocd app get --refresh` sets


def install(cluster: Cluster, say: Callable[[str], None] = to_stderr) -> None:
    """Build (or take from the cache) and start Argo CD; wait until it runs."""
    manifests = build_with_manifests("argocd", say)
    cluster.load_image(IMAGES / "coalmine-argocd.tar", say)
    apply_established(cluster, manifests / "crds")
    apply_once_mapped(cluster, manifests / "install.yaml")
    lua = HEALTH_LUA.read_text()
    data = {f"resource.customizations.health.coalmine.dev_{kind}": lua for kind in KINDS}
    cluster.kubectl(
        "-n", NAMESPACE, "patch", "configmap", "argocd-cm", "--type", "merge",
        "-p", json.dumps({"data": data}),
    )  # fmt: skip
    for ref in ("deployment/argocd-redis", "deployment/argocd-repo-server",
                "statefulset/argocd-application-controller"):  # fmt: skip
        cluster.kubectl("-n", NAMESPACE, "rollout", "status", ref, "--timeout=300s", timeout=320)


class Application:
    """An Application syncing deploy/ of `url` into `namespace`, pruning and self-healing."""

    def __init__(self, cluster: Cluster, url: str, namespace: str) -> None:
        self.cluster, self.url, self.namespace = cluster, url, namespace
        self.name = f"models-{namespace}"

    def start(self) -> None:
        self.cluster.apply(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {"name": self.name, "namespace": NAMESPACE},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": self.url, "targetRevision": BRANCH, "path": "deploy"},
                    "destination": {
                        "server": "https://kubernetes.default.svc",
                        "namespace": self.namespace,
                    },
                    "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
                },
            }
        )

    def refresh(self) -> None:
        """Fetch Git now instead of at the next poll (timeout.reconciliation, 180 s)."""
        self.cluster.kubectl(
            "-n", NAMESPACE, "annotate", "--overwrite", "application", self.name,
            f"{REFRESH}=normal",
        )  # fmt: skip

    def stop(self) -> None:
        self.cluster.kubectl(
            "-n", NAMESPACE, "delete", "application", self.name, "--wait=false", check=False
        )

    def get(self) -> dict[str, Any]:
        return self.cluster.get("application", self.name, NAMESPACE)

    def describe(self, obj: dict[str, Any]) -> str:
        st = obj.get("status") or {}
        sync, health = st.get("sync") or {}, st.get("health") or {}
        md = resource_health(obj, "ModelDeployment")
        return (
            f"Application {health.get('status', '-')}, {sync.get('status', '-')}"
            f" {str(sync.get('revision', ''))[:8]}; ModelDeployment {md.get('status', '-')}:"
            f" {md.get('message', '')[:100]}"
        )


def resource_health(app: dict[str, Any], kind: str) -> dict[str, Any]:
    """The health Argo CD shows for the one resource of `kind` (from our Lua script)."""
    for res in (app.get("status") or {}).get("resources") or []:
        if res.get("kind") == kind:
            health: dict[str, Any] = res.get("health") or {}
            return health
    return {}


def health(app: dict[str, Any]) -> str:
    return str(((app.get("status") or {}).get("health") or {}).get("status", ""))


def synced_to(app: dict[str, Any], sha: str) -> bool:
    sync = (app.get("status") or {}).get("sync") or {}
    return sync.get("status") == "Synced" and sync.get("revision") == sha
