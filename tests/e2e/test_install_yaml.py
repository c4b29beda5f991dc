"""`kubectl apply --server-side -f dist/install.yaml` (issue 12), in cluster-wide mode,
serves a model and rolls it out (v1 served, v2 promoted) while Debian's Prometheus
scrapes the operator's /metrics and the serving pods; then every query of every
panel and variable of the chart's Grafana dashboard runs through Prometheus's HTTP
API and must return series, and the panels are drawn to
_out/dashboard/coalmine-dashboard.png.

On the shared cluster, a few things of the file change (names, and the scope of
the policy binding), so the install does not fight the other tests (the e2e
operator owns `t-*`, the Helm test `helm-*`, the demo's release is `coalmine` in
`coalmine-system`):
- its namespace `coalmine-system` becomes `install-XXXX`;
- its cluster-scoped objects (ClusterRoles and their binding, the governance policy
  and its binding) get that suffix, and the policy binding is limited to
  `install-w-XXXX`;
- the operator gets one `--namespace=install-w-XXXX` flag.
The RBAC stays the cluster-wide ClusterRole; everything else, the CRDs included, is
applied as the file has it. (A second API server is no option: pods need the node.)
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import RESTRICTED
from tests.e2e.dashboard import draw, load, panel_queries, substitute, variable_values, variables
from tests.e2e.prometheus import api, host_prometheus, pod_target, serving_targets
from tests.support.client import InClusterClient
from tests.support.cluster import REPO, Cluster, ensure_namespace
from tests.support.images import build_and_load
from tests.support.leader import leader, pods
from tests.support.rollout import ROWS, Rollout, promoted_to, report, strategy

INSTALL = REPO / "dist" / "install.yaml"
PNG = REPO / "_out" / "dashboard" / "coalmine-dashboard.png"
FILE_NAMESPACE = "coalmine-system"
RATE_INTERVAL = "10s"  # Grafana's $__rate_interval at 1 s scrapes and a short range


@dataclass
class Install:
    suffix: str

    @property
    def system(self) -> str:
        return f"install-{self.suffix}"

    @property
    def watched(self) -> str:
        return f"install-w-{self.suffix}"


CLUSTER_SCOPED = (
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
)
"""Kinds whose names get the suffix; the policy binding is also limited to the watch."""


def for_the_shared_cluster(docs: list[dict[str, Any]], inst: Install) -> list[dict[str, Any]]:
    """dist/install.yaml with its names made unique and the watch limited (module docstring)."""
    out = []
    for original in docs:
        doc = copy.deepcopy(original)
        meta, kind = doc["metadata"], doc["kind"]
        if kind == "Namespace" and meta["name"] == FILE_NAMESPACE:
            meta["name"] = inst.system
        if meta.get("namespace") == FILE_NAMESPACE:
            meta["namespace"] = inst.system
        if kind in CLUSTER_SCOPED:
            meta["name"] = f"{meta['name']}-{inst.suffix}"
        if kind == "ValidatingAdmissionPolicyBinding":
            doc["spec"]["policyName"] = f"{doc['spec']['policyName']}-{inst.suffix}"
            doc["spec"]["matchResources"] = {"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": inst.watched}}}  # fmt: skip
        if kind == "ClusterRoleBinding":
            doc["roleRef"]["name"] = f"{doc['roleRef']['name']}-{inst.suffix}"
        if kind in ("ClusterRoleBinding", "RoleBinding"):
            for subject in doc["subjects"]:
                subject["namespace"] = inst.system
        if kind == "Deployment":
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            container["args"].append(f"--namespace={inst.watched}")
        out.append(doc)
    return out


@pytest.fixture(scope="module")
def installed(cluster: Cluster, crds: None, serving_image: None) -> Iterator[Install]:
    build_and_load(cluster, "image-operator", "coalmine-operator.tar")
    inst = Install(uuid.uuid4().hex[:6])
    docs = [d for d in yaml.safe_load_all(INSTALL.read_text()) if d]
    assert {d["kind"] for d in docs} >= {"Namespace", "ClusterRole", "Deployment"}
    ours = for_the_shared_cluster(docs, inst)
    try:
        cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(ours))
        ensure_namespace(cluster, inst.watched, RESTRICTED)
        cluster.kubectl("-n", inst.system, "rollout", "status", "deployment/coalmine",
                        "--timeout=180s", timeout=200)  # fmt: skip
        yield inst
    finally:
        for doc in ours:
            if doc["kind"] in CLUSTER_SCOPED:
                cluster.kubectl("delete", doc["kind"], doc["metadata"]["name"], check=False)
        for ns in (inst.system, inst.watched):
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture
def namespace(installed: Install) -> str:
    """The namespace the installed operator watches (overrides conftest's per-test one)."""
    return installed.watched


OPERATOR_PODS = "app.kubernetes.io/instance=coalmine,app.kubernetes.io/name=coalmine"


def operator_pod(cluster: Cluster, inst: Install) -> dict[str, Any]:
    """The leading replica's pod (the file's Lease is named `coalmine`)."""
    return leader(cluster, inst.system, "coalmine", OPERATOR_PODS).pod


@pytest.fixture
def prometheus(
    cluster: Cluster, installed: Install, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Scrapes the serving pods and, like the chart's PodMonitor (honorLabels), the operator."""

    def discover() -> dict[str, list[dict[str, Any]]]:
        replicas = [
            p for p in pods(cluster, installed.system, OPERATOR_PODS) if p["status"].get("podIP")
        ]
        return {
            "coalmine-serving": serving_targets(cluster, installed.watched),
            "coalmine-operator": [pod_target(p, 9090) for p in replicas],
        }

    jobs = {"coalmine-serving": {}, "coalmine-operator": {"honor_labels": True}}
    with host_prometheus(tmp_path_factory.mktemp("prometheus"), discover, jobs) as address:
        yield address


def test_install_yaml_serves_and_rolls_out_and_the_dashboard_has_data(
    cluster: Cluster,
    installed: Install,
    namespace: str,
    models: dict[str, dict[str, Any]],
    client: InClusterClient,
    prometheus: str,
) -> None:
    pod = operator_pod(cluster, installed)
    assert pod["spec"]["serviceAccountName"] == "coalmine"
    binding = cluster.get("clusterrolebinding", f"coalmine-{installed.suffix}")
    assert binding["roleRef"]["kind"] == "ClusterRole"  # cluster-wide RBAC, as the file has it

    started = time.time()
    strat = strategy()
    rollout = Rollout(cluster, namespace, client, models)
    rollout.register("iris-v1", "iris-v2")
    rollout.serve("iris-v1", strat, ROWS)
    out = rollout.change("iris-v2", strat, promoted_to("iris-v2"))
    report("install.yaml", out)
    assert out.load["failed"] == 0
    assert set(out.load["versions"]) == {"v1", "v2"}
    md = out.md
    assert md["status"]["stable"]["modelVersion"] == "iris-v2"
    events = json.loads(cluster.kubectl("-n", namespace, "get", "events", "-o", "json").stdout)
    reporters = {e.get("reportingInstance") for e in events["items"]}
    assert pod["metadata"]["name"] in reporters, "no Event from the installed operator's pod"
    time.sleep(3)  # a last scrape after the promotion

    # Every variable and every panel query of the dashboard returns series.
    dashboard = load()
    values = {"namespace": namespace, "model": "iris"}
    for name, query in variables(dashboard).items():
        found = variable_values(prometheus, query, values)
        assert values[name] in found, (name, query, found)
    results = {}
    empty = []
    for query in panel_queries(dashboard):
        promql = substitute(query.expr, values, RATE_INTERVAL)
        data = api(prometheus, "query_range", query=promql, start=started, end=time.time(), step=2)
        results[query] = data["result"]
        if not data["result"]:
            empty.append(f"{query.panel}: {promql}")
    assert len(results) >= 8
    draw(results, started, PNG)
    print(f"\ndashboard panels drawn: {PNG}")
    assert empty == [], "panels without data:\n" + "\n".join(empty)
