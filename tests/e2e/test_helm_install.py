"""The chart installs a working operator (issue 6): `helm install` -> operator Ready
under its own least-privilege ServiceAccount -> a ModelDeployment served and rolled
to a new version in a namespace enforcing the restricted Pod Security profile ->
`helm upgrade` with changed values -> `helm uninstall` leaves nothing of the
release, and the user's custom resources survive.

The chart runs in namespaced mode, watching only this module's `helm-w-*`
namespace: it never touches what other tests (or a host-process operator) own.
CRDs: the session's `crds` fixture installs them from crds/ (cluster-scoped,
shared with every other test), so the release runs with `crds.install=false`;
the chart's own CRD rendering is validated in tests/integration/test_chart.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import RESTRICTED
from tests.e2e.test_operator_serving import (
    ROWS,
    infer_body,
    infer_url,
    model_deployment,
    wait_validated,
)
from tests.support.client import InClusterClient
from tests.support.cluster import Cluster, wait_for
from tests.support.helm import Release, helm, installed_release
from tests.support.images import build_and_load
from tests.support.leader import is_ready, leader, pods

NAMESPACED_KINDS = (
    "deployments,replicasets,pods,serviceaccounts,roles,rolebindings,configmaps,"
    "networkpolicies,services"
)


@pytest.fixture(scope="module")
def operator_image(cluster: Cluster) -> None:
    """coalmine/operator, built offline (`make image-operator`) and loaded into the cluster."""
    build_and_load(cluster, "image-operator", "coalmine-operator.tar")


@pytest.fixture(scope="module")
def release(
    cluster: Cluster, crds: None, serving_image: None, operator_image: None
) -> Iterator[Release]:
    with installed_release(cluster, RESTRICTED) as rel:
        yield rel


@pytest.fixture
def namespace(release: Release) -> str:
    """The watched namespace (overrides tests/e2e/conftest.py's per-test one)."""
    return release.watched


def operator_pod(cluster: Cluster, release: Release) -> dict[str, Any]:
    """The leading replica's pod."""
    return leader(cluster, release.namespace, release.fullname, release.selector).pod


def can_i(cluster: Cluster, release: Release, *args: str) -> bool:
    proc = cluster.kubectl("auth", "can-i", "--as", release.service_account, *args, check=False)
    return proc.stdout.strip() == "yes"


def operator_logs(cluster: Cluster, release: Release) -> str:
    """Every replica's log: the leader's work and the standbys' waiting."""
    return "".join(
        cluster.kubectl("-n", release.namespace, "logs", p["metadata"]["name"]).stdout
        for p in pods(cluster, release.namespace, release.selector)
    )


def release_objects(cluster: Cluster, release: Release) -> list[str]:
    """Everything labelled as the release's, cluster-scoped and in both namespaces."""
    selector = f"app.kubernetes.io/instance={release.name}"
    found = cluster.kubectl(
        "get", "clusterroles,clusterrolebindings", "-l", selector, "-o", "name"
    ).stdout.split()
    for ns in (release.namespace, release.watched):
        found += cluster.kubectl(
            "-n", ns, "get", NAMESPACED_KINDS, "-l", selector, "-o", "name"
        ).stdout.split()
    return sorted(found)


def test_the_operator_runs_under_its_own_least_privilege_account(
    cluster: Cluster, release: Release
) -> None:
    pod = operator_pod(cluster, release)
    assert is_ready(pod)
    assert pod["spec"]["serviceAccountName"] == release.fullname
    (container,) = pod["spec"]["containers"]
    assert container["args"][:4] == [
        "operator",
        "--liveness=http://0.0.0.0:8080/healthz",
        "--metrics-port=9090",
        f"--namespace={release.watched}",
    ]
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    ns = release.watched
    status_patch = ("patch", "modeldeployments.coalmine.dev", "--subresource=status", "-n", ns)
    assert can_i(cluster, release, *status_patch)
    assert can_i(cluster, release, "create", "deployments.apps", "-n", ns)
    assert can_i(cluster, release, "list", "customresourcedefinitions.apiextensions.k8s.io")
    assert can_i(cluster, release, "patch", "httproutes.gateway.networking.k8s.io", "-n", ns)
    # The route never mirrors, so the operator has no reason to read Gateways or their classes.
    assert not can_i(cluster, release, "get", "gateways.gateway.networking.k8s.io", "-n", "default")
    assert not can_i(cluster, release, "get", "gatewayclasses.gateway.networking.k8s.io")
    assert not can_i(cluster, release, "patch", "gateways.gateway.networking.k8s.io", "-n", ns)
    assert not can_i(cluster, release, "get", "secrets", "-n", ns)
    assert not can_i(cluster, release, "get", "secrets", "-n", release.namespace)
    assert not can_i(cluster, release, "list", "modeldeployments.coalmine.dev", "-n", "default")
    assert not can_i(cluster, release, "list", "modeldeployments.coalmine.dev", "--all-namespaces")
    assert not can_i(cluster, release, "create", "rolebindings.rbac.authorization.k8s.io", "-n", ns)
    assert not can_i(cluster, release, "update", "modeldeployments.coalmine.dev", "-n", ns)


def test_install_serve_roll_out_upgrade_uninstall(
    cluster: Cluster,
    release: Release,
    models: dict[str, dict[str, Any]],
    client: InClusterClient,
) -> None:
    ns = release.watched
    replicas = {p["metadata"]["name"] for p in pods(cluster, release.namespace, release.selector)}
    assert len(replicas) == 2, replicas  # a leader and a standby

    # Serve v1 through the installed operator.
    cluster.apply(models["iris-v1"], models["iris-v2"], namespace=ns)
    wait_validated(cluster, "iris-v1", ns)
    wait_validated(cluster, "iris-v2", ns)
    cluster.apply(model_deployment("iris", "iris-v1"), namespace=ns)
    cluster.wait_ready("modeldeployment/iris", ns)
    status, answer = wait_for(
        "a v1 prediction through the Service",
        lambda: (r := client.request(infer_url(ns, "iris"), infer_body(ROWS)))[0] == 200 and r,
        timeout=60,
    )
    assert answer["model_version"] == "v1"

    # Roll out v2: the canary walks its steps and is promoted.
    cluster.apply(model_deployment("iris", "iris-v2"), namespace=ns)

    def promoted() -> bool:
        md = cluster.get("modeldeployment", "iris", ns)
        st = md.get("status", {})
        return bool(
            st.get("observedGeneration") == md["metadata"]["generation"]
            and st.get("phase") == "Healthy"
            and (st.get("stable") or {}).get("modelVersion") == "iris-v2"
        )

    wait_for("the rollout of iris-v2 to be promoted", promoted, timeout=300)
    status, answer = wait_for(
        "a v2 prediction through the Service",
        lambda: (
            (r := client.request(infer_url(ns, "iris"), infer_body(ROWS)))[0] == 200
            and r[1].get("model_version") == "v2"
            and r
        ),
        timeout=60,
    )
    assert status == 200

    # It was this operator, under its own account, never refused, never restarted.
    for pod in pods(cluster, release.namespace, release.selector):
        (container_status,) = pod["status"]["containerStatuses"]
        assert container_status["restartCount"] == 0, container_status
    events = json.loads(cluster.kubectl("-n", ns, "get", "events", "-o", "json").stdout)["items"]
    reporters = {e.get("reportingInstance") for e in events}
    assert operator_pod(cluster, release)["metadata"]["name"] in reporters, reporters
    log = operator_logs(cluster, release)
    for refusal in ("Forbidden", "forbidden", " 403"):
        assert refusal not in log, log[-3000:]
    assert "failed; retry" not in log, log[-3000:]

    # The restricted profile admitted the serving and check pods: no refused creations.
    labels = cluster.get("namespace", ns)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert not [e for e in events if e.get("reason") == "FailedCreate"]

    # The operator owns no field of the user's spec: re-applying it changes nothing.
    dry = cluster.kubectl(
        "-n", ns, "apply", "--server-side", "--dry-run=server", "-o", "json", "-f", "-",
        input=json.dumps(model_deployment("iris", "iris-v2")),
    ).stdout  # fmt: skip
    before = cluster.get("modeldeployment", "iris", ns)
    assert json.loads(dry)["metadata"]["generation"] == before["metadata"]["generation"]

    # helm upgrade with changed values: a new operator pod with them; optional objects follow.
    objects_before = release_objects(cluster, release)
    assert f"configmap/{release.fullname}-dashboard" in objects_before
    changed = release.values(
        operator={"verbose": True, "healthPort": 8080},
        resources={"requests": {"cpu": "20m", "memory": "96Mi"}, "limits": {"memory": "384Mi"}},
        networkPolicy={"enabled": True},
        dashboard={"enabled": False},
    )
    release.helm("upgrade", changed, cluster)
    pod = wait_for(
        "an upgraded replica to lead",
        lambda: (
            (p := operator_pod(cluster, release))["metadata"]["name"] not in replicas
            and is_ready(p)
            and p
        ),
        timeout=180,
    )
    (container,) = pod["spec"]["containers"]
    assert "--verbose" in container["args"]
    assert container["resources"]["requests"] == {"cpu": "20m", "memory": "96Mi"}
    upgraded = release_objects(cluster, release)
    assert f"configmap/{release.fullname}-dashboard" not in upgraded
    assert f"networkpolicy.networking.k8s.io/{release.fullname}" in upgraded
    assert f"networkpolicy.networking.k8s.io/{release.fullname}-scrape" in upgraded
    assert cluster.get("modeldeployment", "iris", ns)["status"]["phase"] == "Healthy"

    release.helm("upgrade", release.values(), cluster)
    restored = release_objects(cluster, release)
    assert not [o for o in restored if o.startswith("networkpolicy")]
    assert f"configmap/{release.fullname}-dashboard" in restored

    # helm uninstall: nothing of the release is left; the user's resources are.
    helm("uninstall", release.name, "--namespace", release.namespace, "--wait", cluster=cluster)
    wait_for("the release's objects to go", lambda: release_objects(cluster, release) == [])
    for kind, name in [("clusterrole", release.fullname), ("clusterrolebinding", release.fullname)]:
        proc = cluster.kubectl("get", kind, name, check=False)
        assert "NotFound" in proc.stderr, proc.stdout
    listed = helm("list", "--namespace", release.namespace, "-q", cluster=cluster).stdout
    assert release.name not in listed
    md = cluster.get("modeldeployment", "iris", ns)
    assert (md["status"]["stable"] or {})["modelVersion"] == "iris-v2"
    assert cluster.get("modelversion", "iris-v1", ns)["status"]["phase"] == "Validated"
    assert cluster.get("deployment", "iris-stable", ns)["status"].get("readyReplicas") == 1
