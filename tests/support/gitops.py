"""A GitOps rollout as a user drives one: commits to a repository, a controller applies them.

Shared by the Flux and Argo CD end-to-end tests (issue 18). `Repository` is a Git work
tree that `tests.support.gitserver` serves on the node's bridge address, the only host
address pods reach: a commit in it is what the next fetch sees, as a push to a forge would
be. `Run` commits the manifests of one ModelDeployment and its ModelVersions and follows
the controller's health (a `Tool`) beside the ModelDeployment's status, as a timeline.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import yaml

from tests.support.client import InClusterClient
from tests.support.cluster import Cluster, wait_for
from tests.support.rollout import INTERVAL, SKEWED_ROWS, body, metric, strategy

NODE_IP = "10.244.0.1"  # hack/localcluster/lib.sh: the bridge's own address
BRANCH = "main"
AUTHOR = ["-c", "user.name=Coalmine tests", "-c", "user.email=tests@coalmine.invalid"]
NAME = "iris"
# The rollout e2e tests time latency; here the faulty model only shifts predictions, and
# latency is bounded loosely so that a busy machine never rolls back the good version.
ANALYSIS = {
    "analysis": {
        "interval": INTERVAL,
        "count": 2,
        "metrics": [
            metric("error-rate", "errorRate", 0.05),
            metric("latency-p99", "latencyP99", 250),
            metric("prediction-shift", "predictionShift", 0.2),
        ],
    }
}
STRATEGY = strategy([{"setWeight": 25}, ANALYSIS, {"setWeight": 50}, ANALYSIS])

Seen = tuple[dict[str, Any], dict[str, Any]]
"""The controller's object (Kustomization, Application) and the ModelDeployment's status."""


class Repository:
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


class Tool(Protocol):
    """The GitOps controller's view: its object, and one line of the health it shows."""

    def get(self) -> dict[str, Any]: ...

    def describe(self, obj: dict[str, Any]) -> str: ...


SYNC_WAVE = "argocd.argoproj.io/sync-wave"


def in_git(mv: dict[str, Any]) -> dict[str, Any]:
    """A ModelVersion as a user keeps it in Git: no namespace (the controller sets it), and
    in the sync wave before the ModelDeployment's, so that Argo CD never applies a
    ModelDeployment naming a version not there yet (Flux ignores the annotation)."""
    meta = {k: v for k, v in mv["metadata"].items() if k != "namespace"}
    meta["annotations"] = {**meta.get("annotations", {}), SYNC_WAVE: "-1"}
    return {**mv, "metadata": meta}


class Run:
    """Commits to `repo` (under deploy/) and what `tool` and the ModelDeployment show."""

    def __init__(
        self,
        cluster: Cluster,
        repo: Repository,
        tool: Tool,
        namespace: str,
        models: dict[str, Any],
    ) -> None:
        self.cluster, self.repo, self.tool = cluster, repo, tool
        self.namespace, self.models = namespace, models
        self.timeline: list[str] = []

    def commit(self, message: str, serve: str, registered: list[str]) -> tuple[str, float]:
        """Commit `serve` as the ModelDeployment's version, with the ModelVersions
        `registered` (every one it may still name: a pruning controller deletes the rest);
        the SHA and when it was committed."""
        md = {
            "apiVersion": "coalmine.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": NAME},
            "spec": {"modelVersion": serve, "replicas": 2, "strategy": STRATEGY},
        }
        files = {
            "deploy/modelversions.yaml": [in_git(self.models[v]) for v in registered],
            "deploy/iris.yaml": [md],
        }
        return self.repo.commit(message, files), time.monotonic()

    def md(self) -> dict[str, Any]:
        return self.cluster.get("modeldeployment", NAME, self.namespace)

    def start_load(self, client: InClusterClient) -> None:
        """Bounded load through the ModelDeployment's Service, once it answers (kube-proxy
        programs a new Service a moment after its pods are Ready)."""
        url = f"http://{NAME}.{self.namespace}.svc.cluster.local/v2/models/{NAME}/infer"
        wait_for(
            "the Service to answer", lambda: client.request(url, body(SKEWED_ROWS[0]))[0] == 200
        )
        client.start_load(url, [body(r) for r in SKEWED_ROWS], concurrency=4,
                          max_requests=150_000, max_seconds=900)  # fmt: skip

    def observe(self) -> Seen:
        """The tool's object and the ModelDeployment's status, logged whenever either
        changes (the timeline the test prints)."""
        obj = self.tool.get()
        md = self.cluster.find("modeldeployment", NAME, self.namespace) or {}
        st = md.get("status") or {}
        line = (
            f"{self.tool.describe(obj)} | ModelDeployment {st.get('phase', '-')}"
            f" stable {(st.get('stable') or {}).get('modelVersion', '-')}"
            f" canary {(st.get('canary') or {}).get('modelVersion', '-')}"
            f" {st.get('message', '')[:120]}"
        )
        if not self.timeline or self.timeline[-1].partition("  ")[2] != line:
            self.timeline.append(f"{time.strftime('%H:%M:%S')}  {line}")
        return obj, st

    def until(self, what: str, done: Callable[[dict[str, Any], dict[str, Any]], bool],
              timeout: float) -> Seen:  # fmt: skip
        """Poll until `done(object, status)`; print the timeline seen meanwhile."""

        def check() -> Seen | None:
            obj, st = self.observe()
            return (obj, st) if done(obj, st) else None

        try:
            seen: Seen = wait_for(what, check, timeout=timeout, interval=1)
            return seen
        finally:
            print("\n".join(["", f"-- {what}", *self.timeline]))
            self.timeline = self.timeline[-1:]


def canary_walking(st: dict[str, Any]) -> bool:
    """A canary is taking traffic: the moments a controller must show as in progress."""
    return st.get("phase") == "Progressing" and (st.get("canary") or {}).get("weight", 0) > 0


def rollbacks(st: dict[str, Any]) -> int:
    return sum(h["outcome"] == "RolledBack" for h in st.get("history", []))
