"""Two operator replicas, as the chart installs them, through the failures of issue 16:

- the leader SIGKILLed at every stage of a rollout: the standby takes the Lease within its
  duration and continues from status;
- the API server stopped for 45 s at weight 50 during an analysis: the serving pods keep
  answering, the operator recovers without a restart and the rollout ends as it should.

Either way clients never see a failed request, and history records the revision once. The
kill comes from the host (the container's processes, found by their cgroup), as a crash or
the OOM killer would end them: no clean shutdown, no Lease given back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from coalmine.leadership import LEASE_SECONDS, RETRY_SECONDS
from tests.e2e.conftest import RESTRICTED
from tests.support.client import InClusterClient
from tests.support.cluster import REPO, Cluster, PermanentError, wait_for
from tests.support.helm import Release, installed_release
from tests.support.images import build_and_load
from tests.support.leader import is_ready, leader, pods, sigkill
from tests.support.models import provide_models, remove_models
from tests.support.rollout import (
    INTERVAL,
    METRICS,
    ROWS,
    Rollout,
    promoted_to,
    report,
    rollout_stage,
    strategy,
)
from tests.support.steps import LOGS, run_step

POLL_SECONDS = 1  # this test looks at the Lease this often
REQUEST_SECONDS = 1  # a Lease read and write take a moment on a busy machine
HANDOVER_BOUND = LEASE_SECONDS + 2 * RETRY_SECONDS + REQUEST_SECONDS
"""From the dead leader's last renewal to the new holder's acquisition, as the Lease records
them: the standby counts the lease from when it saw the record change (up to one retry after
the renewal, by its own clock, as client-go does) and takes it at its next retry after that."""
OUTAGE_SECONDS = 45
APISERVER = REPO / "hack" / "localcluster" / "apiserver.sh"


@pytest.fixture(scope="module")
def release(cluster: Cluster, crds: None, serving_image: None) -> Iterator[Release]:
    build_and_load(cluster, "image-operator", "coalmine-operator.tar")
    with installed_release(cluster, RESTRICTED) as rel:
        yield rel


@pytest.fixture
def namespace(release: Release) -> str:
    """The watched namespace (overrides tests/e2e/conftest.py's per-test one)."""
    return release.watched


@pytest.fixture(scope="module")
def models(
    cluster: Cluster, release: Release, trained: Path
) -> Iterator[dict[str, dict[str, Any]]]:
    """The example ModelVersions, once for the module's tests (they share its namespace)."""
    yield provide_models(cluster, release.watched, trained)
    remove_models(cluster, release.watched)


def restarts(cluster: Cluster, release: Release) -> int:
    replicas = pods(cluster, release.namespace, release.selector)
    return sum(s["restartCount"] for p in replicas for s in p["status"]["containerStatuses"])


def lease_spec(cluster: Cluster, release: Release) -> dict[str, Any]:
    spec: dict[str, Any] = (cluster.get("lease", release.fullname, release.namespace))["spec"]
    return spec


def kill_the_leader(cluster: Cluster, release: Release) -> float:
    """SIGKILL the leading replica once a standby is up; the seconds from its last renewal to
    the new holder's acquisition (both stamped on this host's clock)."""
    wait_for(
        "two ready operator replicas",
        lambda: sum(is_ready(p) for p in pods(cluster, release.namespace, release.selector)) == 2,
        timeout=120,
    )
    old = leader(cluster, release.namespace, release.fullname, release.selector)
    sigkill(old.pod, "operator")
    renewed: list[str] = []

    def taken() -> dict[str, Any] | None:
        spec = lease_spec(cluster, release)
        if spec.get("holderIdentity") == old.identity:
            renewed.append(spec["renewTime"])  # the dead leader's last, until overwritten
            return None
        return spec if spec.get("holderIdentity") else None

    new = wait_for(
        f"a new holder of the lease after {old.identity}",
        taken,
        timeout=HANDOVER_BOUND + 30,
        interval=POLL_SECONDS,
    )
    assert renewed, "the lease changed hands before this test saw the old holder's record"
    acquired = datetime.fromisoformat(new["acquireTime"])
    return (acquired - datetime.fromisoformat(renewed[-1])).total_seconds()


def permanent(what: str, action: Callable[[], None]) -> None:
    """Run a step inside a `wait_for` callback: a failure ends the test at once (wait_for
    would retry it as if the condition were merely not met yet)."""
    try:
        action()
    except Exception as exc:
        raise PermanentError(f"{what}: {exc!r}") from exc


def test_the_leader_killed_at_every_stage_of_a_rollout(
    cluster: Cluster,
    release: Release,
    models: dict[str, dict[str, Any]],
    client: InClusterClient,
) -> None:
    rollout = Rollout(cluster, release.watched, client, models)
    rollout.register("iris-v1", "iris-v2")
    rollout.serve("iris-v1", strategy(), ROWS)
    handovers: dict[str, float] = {}

    def kill_once_per_stage(st: dict[str, Any]) -> None:
        stage = rollout_stage(st)
        if stage is not None and stage not in handovers:
            handovers[stage] = -1.0  # one kill per stage, even if this one fails

            def kill() -> None:
                handovers[stage] = kill_the_leader(cluster, release)

            permanent(f"killing the leader at {stage}", kill)

    try:
        out = rollout.change(
            "iris-v2", strategy(), promoted_to("iris-v2"), during=kill_once_per_stage, timeout=600
        )
    finally:
        cluster.kubectl("-n", release.watched, "delete", "modeldeployment", rollout.name)
    report("leader killed", out)
    print("handover seconds by stage:", {k: round(v, 1) for k, v in handovers.items()})
    # "at-weight" lasts one reconcile here (the analysis starts with it); "promoting" is
    # seen when a poll lands in it.
    assert {"canary-starting", "mid-analysis"} <= handovers.keys(), handovers
    for stage, seconds in handovers.items():
        assert 0 < seconds <= HANDOVER_BOUND, (stage, seconds)
    assert out.load["failed"] == 0, out.load["errors"]
    assert set(out.load["versions"]) == {"v1", "v2"}
    history = out.md["status"]["history"]
    revisions = [h["revision"] for h in history]
    assert len(revisions) == len(set(revisions)), history
    assert [h["modelVersion"] for h in history if h["outcome"] == "Promoted"][-1] == "iris-v2"
    # Each kill restarted one container, and nothing else did (the kubelet counts a moment late).
    kills = len(handovers)
    wait_for("a restart per kill", lambda: restarts(cluster, release) >= kills, timeout=120)
    assert restarts(cluster, release) == kills


def api_server(action: str) -> None:
    """Stop or start the local cluster's kube-apiserver alone."""
    log = LOGS / f"apiserver-{action}.log"
    run_step(f"kube-apiserver {action}", [str(APISERVER), action], log=log)


def test_an_api_server_outage_at_weight_50_during_an_analysis(
    cluster: Cluster,
    release: Release,
    models: dict[str, dict[str, Any]],
    client: InClusterClient,
) -> None:
    if cluster.kind != "local":
        pytest.skip("stopping the API server needs the local cluster (hack/localcluster)")
    rollout = Rollout(cluster, release.watched, client, models)
    rollout.name = "iris-outage"
    # The outage comes before the first of six measurements; they follow once it is over.
    analysis = {"analysis": {"interval": INTERVAL, "count": 6, "metrics": METRICS}}
    steps = strategy([{"setWeight": 50}, analysis])
    rollout.register("iris-v1", "iris-v2")
    # Load for the whole run (outage and analysis, ~3 minutes at up to ~1,000 requests/s).
    rollout.serve("iris-v1", steps, ROWS, max_requests=400_000)
    before = restarts(cluster, release)
    outage: dict[str, float] = {}

    def outage_mid_analysis(st: dict[str, Any]) -> None:
        weight = (st.get("canary") or {}).get("weight")
        if outage or rollout_stage(st) != "mid-analysis" or weight != 50:
            return
        outage["from"] = rollout.load_second()

        def stop_wait_start() -> None:
            try:
                api_server("stop")
                wait_for(
                    "the outage to last",
                    lambda: rollout.load_second() >= outage["from"] + OUTAGE_SECONDS,
                    timeout=OUTAGE_SECONDS + 30,
                )
            finally:
                api_server("start")
            outage["to"] = rollout.load_second()

        permanent("the API-server outage", stop_wait_start)

    try:
        out = rollout.change("iris-v2", steps, promoted_to("iris-v2"), during=outage_mid_analysis)
    finally:
        cluster.kubectl("-n", release.watched, "delete", "modeldeployment", rollout.name)
    report("API server outage", out)
    assert outage, "the rollout never reached weight 50 in an analysis"
    print(f"outage from load second {outage['from']:.0f} to {outage['to']:.0f}")
    during = out.load["seconds"][int(outage["from"]) + 1 : int(outage["to"])]
    assert sum(s["ok"] for s in during) > 0, "no answers during the outage"
    assert out.load["failed"] == 0, out.load["errors"]
    assert set(out.load["versions"]) == {"v1", "v2"}
    history = out.md["status"]["history"]
    revisions = [h["revision"] for h in history]
    assert len(revisions) == len(set(revisions)), history
    assert restarts(cluster, release) == before  # the operator recovered as it ran
