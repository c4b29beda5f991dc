"""Flux in the test cluster, fed from a Git repository on this host (issue 18).

`install` builds source-controller and kustomize-controller from Go modules
(hack/flux/build.sh, cached after the first build), loads their images and applies their
CRDs and Deployments. `GitOpsRepo` is a work tree that `tests.support.gitserver` serves on
the node's bridge address, the only host address pods reach. A commit in it is what the
next fetch of the `GitRepository` sees, as a push to a forge would be.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.support.cluster import REPO, Cluster
from tests.support.images import IMAGES
from tests.support.steps import LOGS, run_step, to_stderr

NAMESPACE = "flux-system"
HEALTH_CHECKS = REPO / "gitops" / "flux" / "health-checks.yaml"
CONTROLLERS = ("source-controller", "kustomize-controller")
NODE_IP = "10.244.0.1"  # hack/localcluster/lib.sh: the bridge's own address
BRANCH = "main"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"  # what `flux reconcile` sets
AUTHOR = ["-c", "user.name=Coalmine tests", "-c", "user.email=tests@coalmine.invalid"]


def install(cluster: Cluster, say: Callable[[str], None] = to_stderr) -> None:
    """Build (or take from the cache) and start Flux's two controllers; wait until Available."""
    out = run_step(
        "hack/flux/build.sh",
        ["bash", str(REPO / "hack" / "flux" / "build.sh")],
        log=LOGS / "image-flux.log",
        say=say,
        timeout=3600,
    )
    manifests = Path(out.strip().splitlines()[-1])  # the script's last line names them
    for name in CONTROLLERS:
        cluster.load_image(IMAGES / f"coalmine-flux-{name}.tar", say)
    cluster.kubectl("apply", "--server-side", "-f", str(manifests / "crds"))
    cluster.kubectl("apply", "--server-side", "-f", str(manifests / "controllers.yaml"))
    for name in CONTROLLERS:
        cluster.kubectl(
            "-n", NAMESPACE, "rollout", "status", f"deployment/{name}", "--timeout=180s",
            timeout=200,
        )  # fmt: skip


class GitOpsRepo:
    """A Git work tree of manifests; `commit` writes files and records them on `main`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self._git("init", "-q", "-b", BRANCH)

    def _git(self, *args: str) -> str:
        proc = subprocess.run(
            ["git", *AUTHOR, *args], cwd=self.path, capture_output=True, text=True, check=True
        )
        return proc.stdout.strip()

    def commit(self, message: str, files: dict[str, list[dict[str, Any]]]) -> str:
        """Write each file's documents as YAML, commit them all; the new commit's SHA."""
        for name, docs in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        self._git("add", "-A")
        self._git("commit", "-q", "-m", message)
        return self._git("rev-parse", "HEAD")


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
