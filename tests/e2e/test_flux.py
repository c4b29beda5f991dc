"""GitOps with a real Flux (issue 18): commits roll a model out, Flux's health reads ours.

Flux's source-controller and kustomize-controller, built from Go modules, fetch a Git
repository served from this host on the node's bridge address and apply it with
`wait: true`, as docs/gitops.md tells users to. Under bounded client load:

1. v1 committed: the Kustomization turns Ready once the ModelDeployment serves;
2. v2 (good) committed: the Kustomization is in progress while the canary walks, then Ready;
3. v3 (mislabelled) committed: Coalmine rolls back; the Kustomization fails on our
   ModelDeployment while its spec still names v3, as Git does;
4. `coalmine retry`: Flux keeps the CLI's annotation, the same revision walks again (and
   fails again: the model is still wrong);
5. a follow-up commit back to v2, what stable serves: Ready, with no new rollout.

No client request fails in all of it. The times from commit to outcome are printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import flux
from tests.support.client import InClusterClient
from tests.support.cluster import Cluster, PermanentError, wait_for
from tests.support.gitops import NAME, Repository, Run, canary_walking, rollbacks
from tests.support.gitserver import GitServer
from tests.support.operator import OperatorProcess
from tests.support.rollout import coalmine, promoted_to, rolled_back

HEALTH_CHECK_FAILED = "HealthCheckFailed"  # kustomize-controller's reason


@pytest.fixture
def kustomization(
    cluster: Cluster, namespace: str, git_repository: tuple[GitServer, Repository]
) -> Iterator[tuple[flux.Kustomization, Repository]]:
    """Flux installed, and the Kustomization that applies the repository."""
    git, repo = git_repository
    flux.install(cluster)
    ks = flux.Kustomization(cluster, git.url("models"), namespace, timeout="5m")
    yield ks, repo
    ks.stop()


def ready_at(sha: str) -> Callable[[dict[str, Any], dict[str, Any]], bool]:
    """The Kustomization applied commit `sha` and every object it holds is Current."""

    def check(ks: dict[str, Any], _: dict[str, Any]) -> bool:
        cond = flux.ready(ks)
        applied = str((ks.get("status") or {}).get("lastAppliedRevision") or "")
        failed = cond.get("status") == "False" and cond.get("reason") != HEALTH_CHECK_FAILED
        if failed and flux.applied_sha(ks) == sha:  # the tree itself is wrong: say so now
            raise PermanentError(f"Kustomization failed: {cond.get('message')}")
        return cond.get("status") == "True" and applied.endswith(sha)

    return check


def test_commits_roll_out_through_flux_and_its_health_reads_ours(
    cluster: Cluster,
    namespace: str,
    client: InClusterClient,
    operator: OperatorProcess,
    models: dict[str, Any],
    kustomization: tuple[flux.Kustomization, Repository],
) -> None:
    tool, repo = kustomization
    ops = Run(cluster, repo, tool, namespace, models)
    sha1, t1 = ops.commit("Serve iris-v1", "iris-v1", ["iris-v1"])
    tool.start()
    ops.until("v1 Ready through Flux", ready_at(sha1), timeout=300)
    v1_took = time.monotonic() - t1
    assert ops.md()["status"]["stable"]["modelVersion"] == "iris-v1"

    ops.start_load(client)

    # v2: in progress while the canary walks, Ready once promoted
    sha2, t2 = ops.commit("Roll out iris-v2", "iris-v2", ["iris-v1", "iris-v2"])
    walking: list[str] = []

    def promoted(ks: dict[str, Any], st: dict[str, Any]) -> bool:
        cond = flux.ready(ks)
        if canary_walking(st):
            walking.append(f"{cond.get('status')} {cond.get('reason')}")
        return ready_at(sha2)(ks, st) and promoted_to("iris-v2")(st)

    ops.until("v2 promoted and Ready through Flux", promoted, timeout=360)
    v2_took = time.monotonic() - t2
    assert walking, "never saw the canary walk"
    assert all(w == "Unknown Progressing" for w in walking), walking

    # v3: rolled back; Flux fails on our object, the tree still names v3
    sha3, t3 = ops.commit("Roll out iris-v3", "iris-v3", ["iris-v1", "iris-v2", "iris-v3"])

    def failed_on_ours(ks: dict[str, Any], st: dict[str, Any]) -> bool:
        cond = flux.ready(ks)
        return (
            rolled_back(st)
            and flux.applied_sha(ks) == sha3
            and cond.get("status") == "False"
            and f"ModelDeployment/{namespace}/{NAME} status: 'Failed'" in cond.get("message", "")
        )

    ks, st = ops.until("v3 rolled back, the Kustomization failed", failed_on_ours, timeout=360)
    v3_took = time.monotonic() - t3
    cond = flux.ready(ks)
    assert cond["reason"] == HEALTH_CHECK_FAILED, cond
    assert "prediction-shift" in st["message"], st["message"]
    md = ops.md()
    assert md["spec"]["modelVersion"] == "iris-v3"
    stalled = next(c for c in md["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True", stalled
    assert "prediction-shift" in stalled["message"], stalled
    before = rollbacks(md["status"])

    # coalmine retry: the annotation survives Flux's next apply; v3 walks again and fails again
    coalmine("retry", NAME, "-n", namespace, cluster=cluster)
    ops.until(
        "the retried v3 rolled back again",
        lambda ks, st: rolled_back(st) and rollbacks(st) == before + 1,
        timeout=360,
    )
    token = tool.reconcile_now()
    wait_for(
        "Flux to apply the tree again",
        lambda: tool.get()["status"].get("lastHandledReconcileAt") == token,
        timeout=120,
    )
    annotations = ops.md()["metadata"].get("annotations") or {}
    assert "coalmine.dev/retry" in annotations, annotations

    # a follow-up commit back to what stable serves: Ready, and no rollout
    sha4, t4 = ops.commit("Back to iris-v2", "iris-v2", ["iris-v1", "iris-v2", "iris-v3"])
    history = len(ops.md()["status"]["history"])
    ops.until("back on v2, Ready through Flux", lambda ks, st: ready_at(sha4)(ks, st)
              and st.get("phase") == "Healthy", timeout=180)  # fmt: skip
    v4_took = time.monotonic() - t4
    assert len(ops.md()["status"]["history"]) == history, "a change back to stable rolled out"

    load = client.stop_load()
    print(
        f"\ncommit to Ready: v1 {v1_took:.0f}s, v2 {v2_took:.0f}s (promoted); "
        f"commit to RolledBack: v3 {v3_took:.0f}s; back to v2: {v4_took:.0f}s"
        f"\nrequests ok {load['ok']}, failed {load['failed']}, versions {load['versions']}"
    )
    assert load["failed"] == 0, load["errors"]
    assert load["versions"].get("v2", 0) > 0, load
    assert load["versions"].get("v3", 0) > 0, load
