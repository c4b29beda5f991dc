"""The Helm chart: lint, every values combination rendered and validated by the
real API server (server-side dry-run), least-privilege RBAC, and the generated
files (the chart's CRD copy, dist/install.yaml) in sync with their sources."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import REPO, Cluster, ensure_namespace
from tests.support.helm import CHART, HELM_DIR, helm, template, values_args

WATCHED = ["helm-int-a", "helm-int-b"]
RELEASE_NS = "helm-int-system"
COMBINATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "namespaced": {"watchNamespaces": WATCHED},
    "network-policy": {"networkPolicy": {"enabled": True}},
    "network-policy-namespaced": {
        "watchNamespaces": WATCHED,
        "networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["10.0.0.1/32"]}},
    },
    "service-monitor": {"serviceMonitor": {"enabled": True}},
    "pod-monitor": {"podMonitor": {"enabled": True}},
    "crds-off": {"crds": {"install": False}},
    "everything": {
        "watchNamespaces": WATCHED,
        "networkPolicy": {"enabled": True},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "podMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
        "crds": {"install": True, "keep": False},
        "operator": {"verbose": True},
        "dashboard": {"enabled": False},
    },
}
FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "*"}
RBAC_KINDS = {"ClusterRole", "Role"}


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def operator_roles(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operator's own ClusterRoles (not the governance roles made for people)."""
    return [d for d in by_kind(docs, "ClusterRole") if d["metadata"]["name"] == "coalmine"]


def rules(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in RBAC_KINDS:
            for rule in doc["rules"]:
                yield f"{doc['kind']}/{doc['metadata']['name']}", rule


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: template(values, RELEASE_NS) for name, values in COMBINATIONS.items()}


@pytest.fixture(scope="module")
def namespaces(cluster: Cluster) -> Iterator[None]:
    """The release namespace and the watched ones, enforcing the restricted profile."""
    labels = [
        ("pod-security.kubernetes.io/enforce", "restricted"),
        ("pod-security.kubernetes.io/warn", "restricted"),
    ]
    for name in [RELEASE_NS, *WATCHED]:
        ensure_namespace(cluster, name, labels)
    yield
    for name in [RELEASE_NS, *WATCHED]:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.parametrize("name", COMBINATIONS)
def test_helm_lint_strict(name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = helm("lint", "--strict", str(CHART), *values_args(COMBINATIONS[name], Path(tmp)))
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout


def test_the_schema_refuses_unknown_values() -> None:
    bad_values: list[dict[str, Any]] = [
        {"imag": {}},
        {"image": {"tagg": "x"}},
        {"networkPolicy": {"apiServer": {"x": 1}}},
    ]
    for bad in bad_values:
        with tempfile.TemporaryDirectory() as tmp:
            proc = helm("template", "x", str(CHART), *values_args(bad, Path(tmp)), check=False)
        assert proc.returncode != 0, bad
        assert "additional properties" in proc.stderr, proc.stderr


def test_every_fixed_object_of_the_schema_is_closed() -> None:
    """additionalProperties: false wherever the keys are the chart's own."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    open_maps = {"global", "annotations", "labels", "podAnnotations", "podLabels", "nodeSelector"}
    # Kubernetes types passed through verbatim (the API server validates them).
    passthrough = {"nodeAffinity", "podAffinity", "podAntiAffinity", "extraEgress"}

    def walk(node: dict[str, Any], name: str) -> Iterator[tuple[str, dict[str, Any]]]:
        yield name, node
        for key, sub in node.get("properties", {}).items():
            yield from walk(sub, key)
        if isinstance(node.get("items"), dict):
            yield from walk(node["items"], f"{name}[]")

    objects = [(n, node) for n, node in walk(schema, "") if node.get("type") == "object"]
    assert len(objects) > 15
    for name, node in objects:
        if name in open_maps:
            assert node.get("additionalProperties") in ({"type": "string"}, None), name
        elif name.rstrip("[]") not in passthrough:
            assert node.get("additionalProperties") is False, name


def test_every_value_is_documented() -> None:
    """A comment above each top-level key of values.yaml; a description for every schema key."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    top = [i for i, line in enumerate(lines) if line[:1].isalpha() and ":" in line]
    assert len(top) > 10
    for i in top:
        assert lines[i - 1].startswith("#"), lines[i]

    def undocumented(node: dict[str, Any], path: str) -> Iterator[str]:
        for key, sub in node.get("properties", {}).items():
            if "description" not in sub and "anyOf" not in sub:
                yield f"{path}.{key}"
            yield from undocumented(sub, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            yield from undocumented(node["items"], f"{path}[]")

    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"])
    # Items of lists of Kubernetes objects (tolerations) carry upstream field names.
    missing = [
        p for p in undocumented(schema, "") if not p.startswith((".tolerations[]", ".affinity."))
    ]
    assert missing == []


def test_rbac_is_least_privilege(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, docs in rendered.items():
        found = list(rules(docs))
        assert found, name
        for where, rule in found:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), (name, where, rule)
            assert not FORBIDDEN_VERBS & set(rule["verbs"]), (name, where, rule)
            resources = {r.split("/")[0] for r in rule["resources"]}
            assert "secrets" not in resources, (name, where, rule)
            if "configmaps" in resources:  # the mirror files of shadow steps: applied, never read
                assert set(rule["verbs"]) == {"create", "patch"}, (name, where, rule)
            assert not rule.get("nonResourceURLs"), (name, where, rule)
        for binding in by_kind(docs, "ClusterRoleBinding") + by_kind(docs, "RoleBinding"):
            assert binding["roleRef"]["name"].startswith("coalmine"), binding
            assert binding["subjects"] == [
                {"kind": "ServiceAccount", "name": "coalmine", "namespace": RELEASE_NS}
            ]


def test_namespaced_mode(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["namespaced"]
    (cluster_role,) = operator_roles(docs)
    # The only cluster-wide permissions: kopf reading CRDs and namespaces (no Gateway or
    # GatewayClass: the route never mirrors, so nothing asks what a Gateway supports).
    assert cluster_role["rules"] == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["get", "list", "watch"],
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
    ]
    watch_roles = [r for r in by_kind(docs, "Role") if r["metadata"]["name"] == "coalmine"]
    assert sorted(r["metadata"]["namespace"] for r in watch_roles) == WATCHED
    bindings = [r for r in by_kind(docs, "RoleBinding") if r["metadata"]["name"] == "coalmine"]
    assert sorted(r["metadata"]["namespace"] for r in bindings) == WATCHED
    (deployment,) = by_kind(docs, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace")] == [f"--namespace={n}" for n in WATCHED]

    clusterwide = rendered["default"]
    assert [r["metadata"]["name"] for r in by_kind(clusterwide, "Role")] == [
        "coalmine-leader-election"
    ]
    (cluster_role,) = operator_roles(clusterwide)
    resources = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    assert {
        "namespaces",
        "modeldeployments",
        "deployments",
        "customresourcedefinitions",
    } <= resources


def test_leases_only_in_the_release_namespace(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, docs in rendered.items():
        lease_rules = [
            (where, rule) for where, rule in rules(docs) if "leases" in rule["resources"]
        ]
        assert [w for w, _ in lease_rules] == ["Role/coalmine-leader-election"] * 2, name
        (role,) = [r for r in by_kind(docs, "Role") if r["metadata"]["name"].endswith("election")]
        assert role["metadata"]["namespace"] == RELEASE_NS, name
        named = [r for _, r in lease_rules if "update" in r["verbs"]]
        assert named == [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": ["coalmine"], "verbs": ["get", "update"]}
        ], name  # fmt: skip
        (deployment,) = by_kind(docs, "Deployment")
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--lease-name=coalmine" in args, name


def test_governance_objects(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """The policy, its binding and the people's roles; the binding follows watchNamespaces."""
    docs = rendered["default"]
    roles = {d["metadata"]["name"]: d for d in by_kind(docs, "ClusterRole")}
    assert {"coalmine-developer", "coalmine-approver", "coalmine-operator-on-call"} < set(roles)
    approve = {v for r in roles["coalmine-approver"]["rules"] for v in r["verbs"]}
    assert "approve" in approve
    on_call = roles["coalmine-operator-on-call"]["rules"]
    assert {"resources": ["modeldeployments/commands"], "apiGroups": ["coalmine.dev"],
            "verbs": ["promote", "abort", "retry", "undo"]} in on_call  # fmt: skip
    developer = {v for r in roles["coalmine-developer"]["rules"] for v in r["verbs"]}
    assert not developer & {"approve", "promote", "abort", "retry", "undo"}
    (policy,) = by_kind(docs, "ValidatingAdmissionPolicy")
    (binding,) = by_kind(docs, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert "matchResources" not in binding["spec"]
    (scoped,) = by_kind(rendered["namespaced"], "ValidatingAdmissionPolicyBinding")
    (selector,) = scoped["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert selector["values"] == WATCHED


@pytest.mark.parametrize(
    ("why", "values", "extra"),
    [
        ("turned off", {"governance": {"policy": False, "roles": True}}, []),
        ("Kubernetes 1.29 (helm template)", {}, ["--kube-version", "1.29.0"]),
        ("a live cluster that serves no policies", {}, ["--api-versions", "v1/ConfigMap"]),
    ],
)
def test_without_the_policy_the_chart_still_renders(
    why: str, values: dict[str, Any], extra: list[str]
) -> None:
    docs = template(values, RELEASE_NS, extra=extra)
    kinds = {d["kind"] for d in docs}
    assert not kinds & {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}, why
    assert {"Deployment", "CustomResourceDefinition"} <= kinds, why
    names = {d["metadata"]["name"] for d in by_kind(docs, "ClusterRole")}
    assert "coalmine-approver" in names, why


def test_the_operator_deployment(rendered: dict[str, list[dict[str, Any]]]) -> None:
    (deployment,) = by_kind(rendered["default"], "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2  # a leader and a standby
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = spec["template"]["spec"]
    (preferred,) = pod["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert (
        "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]
    )
    term = preferred["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    (budget,) = by_kind(rendered["default"], "PodDisruptionBudget")
    assert budget["spec"] == {"maxUnavailable": 1, "selector": spec["selector"]}
    (container,) = pod["containers"]
    assert container["image"] == "coalmine/operator:0.1.0"
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    # The operator watches children labelled managed-by=coalmine: never its own objects.
    for doc in rendered["everything"]:
        assert doc["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "Helm"


def test_one_replica_has_no_disruption_budget_and_an_own_affinity_wins() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "pool", "operator": "In", "values": ["system"]}]}]}}}  # fmt: skip
    docs = template({"operator": {"replicas": 1}, "affinity": affinity}, RELEASE_NS)
    assert not by_kind(docs, "PodDisruptionBudget")
    (deployment,) = by_kind(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["template"]["spec"]["affinity"] == affinity


def test_optional_objects(rendered: dict[str, list[dict[str, Any]]]) -> None:
    kinds = {name: {d["kind"] for d in docs} for name, docs in rendered.items()}
    assert "NetworkPolicy" not in kinds["default"]
    assert "ServiceMonitor" not in kinds["default"]
    assert "NetworkPolicy" in kinds["network-policy"]
    assert "ServiceMonitor" in kinds["service-monitor"]
    assert "PodMonitor" not in kinds["default"]
    assert "PodMonitor" in kinds["pod-monitor"]
    assert "PrometheusRule" not in kinds["default"]
    assert "CustomResourceDefinition" in kinds["default"]
    assert "CustomResourceDefinition" not in kinds["crds-off"]
    assert "ConfigMap" not in kinds["everything"]
    scrape = [
        d
        for d in by_kind(rendered["network-policy-namespaced"], "NetworkPolicy")
        if d["metadata"]["name"].endswith("-scrape")
    ]
    assert sorted(d["metadata"]["namespace"] for d in scrape) == WATCHED
    (monitor,) = by_kind(rendered["everything"], "ServiceMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": WATCHED}
    assert monitor["spec"]["endpoints"][0]["port"] == "http"  # coalmine's Service port name
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (operator_monitor,) = by_kind(rendered["everything"], "PodMonitor")
    (deployment,) = by_kind(rendered["everything"], "Deployment")
    selector = operator_monitor["spec"]["selector"]["matchLabels"]
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert operator_monitor["spec"]["namespaceSelector"] == {"matchNames": [RELEASE_NS]}
    (endpoint,) = operator_monitor["spec"]["podMetricsEndpoints"]
    # The port the operator serves /metrics on; its own namespace label wins.
    assert (endpoint["port"], endpoint["honorLabels"]) == ("metrics", True)
    (rule,) = by_kind(rendered["everything"], "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert sorted(alerts) == ["CoalmineModelUnhealthy", "CoalmineWebhookFailing"]
    # The series the operator exports (coalmine/metrics.py), by the names the rules read.
    assert "coalmine_monitoring_check_firing" in alerts["CoalmineModelUnhealthy"]["expr"]
    assert "{{ $labels.check }}" in alerts["CoalmineModelUnhealthy"]["annotations"]["summary"]
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    assert operator_monitor["metadata"]["labels"]["release"] == "prometheus"


def test_dashboard(rendered: dict[str, list[dict[str, Any]]]) -> None:
    (config_map,) = by_kind(rendered["default"], "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["coalmine.json"])
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for metric in (
        "coalmine_requests_total",
        "coalmine_request_errors_total",
        "coalmine_request_duration_seconds_bucket",
        "coalmine_rollout_weight",
        "coalmine_deployment_phase",
        "coalmine_analysis_results_total",
    ):
        assert metric in exprs, metric
    assert "by (le, model, variant, version)" in exprs


def test_crds_come_from_the_generated_source(rendered: dict[str, list[dict[str, Any]]]) -> None:
    copies = {p.name: p.read_bytes() for p in (CHART / "files" / "crds").glob("*.yaml")}
    sources = {p.name: p.read_bytes() for p in (REPO / "crds").glob("*.yaml")}
    assert copies == sources, "charts/coalmine/files/crds is stale: run hack/helm/sync-crds.sh"
    crds = {
        d["metadata"]["name"]: d for d in by_kind(rendered["default"], "CustomResourceDefinition")
    }
    for path in (REPO / "crds").glob("*.yaml"):
        source = yaml.safe_load(path.read_text())
        crd = crds[source["metadata"]["name"]]
        assert crd["spec"] == source["spec"]
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    not_kept = by_kind(rendered["everything"], "CustomResourceDefinition")
    assert not_kept
    assert all(
        "helm.sh/resource-policy" not in d["metadata"].get("annotations", {}) for d in not_kept
    )


def test_dist_install_yaml_is_a_fresh_render() -> None:
    fresh = subprocess.run(
        [str(HELM_DIR / "render.sh"), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert (REPO / "dist" / "install.yaml").read_text() == fresh, "run hack/helm/render.sh"
    docs = [d for d in yaml.safe_load_all(fresh) if d]
    assert docs[0]["kind"] == "Namespace"
    assert docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.cluster
@pytest.mark.parametrize("name", COMBINATIONS)
def test_server_side_dry_run(
    cluster: Cluster, namespaces: None, rendered: dict[str, list[dict[str, Any]]], name: str
) -> None:
    """The API server accepts every object of the rendering (schemas, RBAC rules, PSA)."""
    served = set(cluster.kubectl("api-versions").stdout.split())
    docs: list[dict[str, Any]] = []
    unserved: list[dict[str, Any]] = []
    for doc in rendered[name]:
        (docs if doc["apiVersion"] in served else unserved).append(doc)
    # Only the monitors and the PrometheusRule may be missing without prometheus-operator;
    # their shape is checked in test_optional_objects.
    assert {d["kind"] for d in unserved} <= {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    proc = cluster.kubectl(
        "apply", "--dry-run=server", "-o", "name", "-f", "-", input=yaml.safe_dump_all(docs)
    )
    applied = proc.stdout.split()
    assert len(applied) == len(docs), proc.stdout
    assert "PodSecurity" not in proc.stderr, proc.stderr  # warn=restricted speaks up here
