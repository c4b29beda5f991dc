"""GitOps with a real Argo CD (issue 18): commits roll a model out, Argo CD's health reads ours.

Argo CD's application controller and repo server, built from Go modules, sync a Git
repository served from this host on the node's bridge address, with gitops/argocd/health.lua
loaded into argocd-cm as docs/gitops.md says. Under bounded client load:

1. v1 committed: the Application turns Healthy once the ModelDeployment serves;
2. v2 (good) committed: Progressing while the canary walks, then Healthy;
3. v3 (mislabelled) committed: Coalmine rolls back, the Application is Degraded with our
   reason on the ModelDeployment, and stays Synced: its spec still names v3, as Git does;
4. `coalmine retry`: self-heal keeps the CLI's annotation, the same revision walks again
   (Progressing) and fails again (Degraded);
5. a follow-up commit back to v2, what stable serves: Healthy, with no new rollout.

No client request fails in all of it. The times from commit to outcome are printed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import argocd_app as argocd
from tests.support.client import InClusterClient
from tests.support.cluster import Cluster
from tests.support.gitops import NAME, Repository, Run, canary_walking, rollbacks
from tests.support.gitserver import GitServer
from tests.support.operator import OperatorProcess
from tests.support.rollout import coalmine, promoted_to, rolled_back


@pytest.fixture
def application(
    cluster: Cluster, namespace: str, git_repository: tuple[GitServer, Repository]
) -> Iterator[tuple[argocd.Application, Repository]]:
    """Argo CD installed, and the Application that applies the repository."""
    git, repo = git_repository
    argocd.install(cluster)
    app = argocd.Application(cluster, git.url("models"), namespace)
    yield app, repo
    app.stop()


def test_commits_roll_out_through_argocd_and_its_health_reads_ours(
    cluster: Cluster,
    namespace: str,
    client: InClusterClient,
    operator: OperatorProcess,
    models: dict[str, Any],
    application: tuple[argocd.Application, Repository],
) -> None:
    app, repo = application
    ops = Run(cluster, repo, app, namespace, models)

    def healthy_at(sha: str) -> Any:
        return lambda a, st: argocd.synced_to(a, sha) and argocd.health(a) == "Healthy"

    sha1, t1 = ops.commit("Serve iris-v1", "iris-v1", ["iris-v1"])
    app.start()
    ops.until("v1 Healthy in Argo CD", healthy_at(sha1), timeout=300)
    v1_took = time.monotonic() - t1
    assert ops.md()["status"]["stable"]["modelVersion"] == "iris-v1"

    ops.start_load(client)

    # v2: Progressing while the canary walks, Healthy once promoted
    sha2, t2 = ops.commit("Roll out iris-v2", "iris-v2", ["iris-v1", "iris-v2"])
    app.refresh()
    walking: list[str] = []

    def promoted(a: dict[str, Any], st: dict[str, Any]) -> bool:
        if canary_walking(st):
            walking.append(argocd.health(a))
        return healthy_at(sha2)(a, st) and promoted_to("iris-v2")(st)

    ops.until("v2 promoted and Healthy in Argo CD", promoted, timeout=360)
    v2_took = time.monotonic() - t2
    assert walking, "never saw the canary walk"
    assert set(walking) == {"Progressing"}, walking

    # v3: rolled back; Degraded with our reason, still Synced to v3
    sha3, t3 = ops.commit("Roll out iris-v3", "iris-v3", ["iris-v1", "iris-v2", "iris-v3"])
    app.refresh()

    def degraded(a: dict[str, Any], st: dict[str, Any]) -> bool:
        return rolled_back(st) and argocd.synced_to(a, sha3) and argocd.health(a) == "Degraded"

    a, st = ops.until("v3 rolled back, the Application Degraded", degraded, timeout=360)
    v3_took = time.monotonic() - t3
    ours = argocd.resource_health(a, "ModelDeployment")
    assert ours["status"] == "Degraded", ours
    assert "prediction-shift" in ours["message"], ours
    assert ops.md()["spec"]["modelVersion"] == "iris-v3"
    before = rollbacks(st)

    # coalmine retry: self-heal keeps the annotation; v3 walks again and fails again
    coalmine("retry", NAME, "-n", namespace, cluster=cluster)
    retried: list[str] = []

    def failed_again(a: dict[str, Any], st: dict[str, Any]) -> bool:
        if st.get("phase") == "Progressing":
            retried.append(argocd.health(a))
        return rolled_back(st) and rollbacks(st) == before + 1 and argocd.health(a) == "Degraded"

    ops.until("the retried v3 rolled back again", failed_again, timeout=360)
    assert "Progressing" in retried, retried

    # a follow-up commit back to what stable serves: Healthy, and no rollout
    sha4, t4 = ops.commit("Back to iris-v2", "iris-v2", ["iris-v1", "iris-v2", "iris-v3"])
    app.refresh()
    history = len(ops.md()["status"]["history"])
    ops.until("back on v2, Healthy in Argo CD", lambda a, st: healthy_at(sha4)(a, st)
              and st.get("phase") == "Healthy", timeout=180)  # fmt: skip
    v4_took = time.monotonic() - t4
    assert len(ops.md()["status"]["history"]) == history, "a change back to stable rolled out"
    # synced (self-healing) since the retry: the CLI's annotation is still there
    assert "coalmine.dev/retry" in (ops.md()["metadata"].get("annotations") or {})

    load = client.stop_load()
    print(
        f"\ncommit to Healthy: v1 {v1_took:.0f}s, v2 {v2_took:.0f}s (promoted); "
        f"commit to Degraded (rolled back): v3 {v3_took:.0f}s; back to v2: {v4_took:.0f}s"
        f"\nrequests ok {load['ok']}, failed {load['failed']}, versions {load['versions']}"
    )
    assert load["failed"] == 0, load["errors"]
    assert load["versions"].get("v2", 0) > 0, load
    assert load["versions"].get("v3", 0) > 0, load
