"""The API server itself rejects invalid Coalmine resources, with messages users understand.

Runs against the session `cluster`; applies crds/*.yaml first. Each invalid
case is a valid manifest with one mistake, so the expected message can only
come from that mistake.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import config

from coalmine.api import ModelDeployment, ModelVersion
from coalmine.api.counters import VariantCounters
from coalmine.api.deployment import AnalysisRun, ModelDeploymentStatus
from coalmine.kube.client import Kube
from coalmine.resources import build_deployment, build_hpa, build_service
from tests.support.cluster import Cluster, ensure_namespace
from tests.support.crds import install_crds

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
# Fresh per run: a namespace from an earlier run may still be terminating.
NAMESPACE = f"coalmine-admission-{uuid.uuid4().hex[:6]}"
API = "coalmine.dev/v1alpha1"
DIGEST = "0123456789abcdef" * 4

Doc = dict[str, Any]


def model_version(name: str = "iris-v1") -> Doc:
    return {
        "apiVersion": API,
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {
            "model": "iris",
            "version": "v1",
            "uri": "file:///models/iris-v1.joblib",
            "sha256": DIGEST,
            "format": "joblib",
            "signature": {
                "inputs": [
                    {"name": "sepal_length", "datatype": "FP64"},
                    {"name": "sepal_width", "datatype": "FP64"},
                ],
                "output": {"kind": "classification", "classLabels": ["a", "b", "c"]},
            },
            "metrics": {"accuracy": 0.97},
            "reference": {
                "features": [
                    {"name": "sepal_length", "binEdges": [4, 5, 6, 8], "fractions": [0.3, 0.4, 0.3]}
                ]
            },
        },
    }


def strategy_spec() -> Doc:
    return {
        "steps": [
            {"setWeight": 20},
            {
                "analysis": {
                    "interval": "10s",
                    "metrics": [
                        {
                            "name": "errors",
                            "provider": "builtin",
                            "builtin": {"metric": "errorRate"},
                            "threshold": {"max": 0.01},
                        }
                    ],
                }
            },
            {"setWeight": 50},
            {"pause": {}},
            {"pause": {"duration": "1m"}},
            {"mirror": 100},
        ],
        "progressDeadlineSeconds": 120,
    }


def rollout_strategy(name: str = "canary") -> Doc:
    return {
        "apiVersion": API,
        "kind": "RolloutStrategy",
        "metadata": {"name": name},
        "spec": strategy_spec(),
    }


def model_deployment(name: str = "iris") -> Doc:
    return {
        "apiVersion": API,
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"modelVersion": "iris-v1", "strategyRef": {"name": "canary"}, "replicas": 2},
    }


def edit(doc: Doc, change: Callable[[Doc], object]) -> Doc:
    """A copy of `doc` with `change` applied to it."""
    doc = copy.deepcopy(doc)
    change(doc)
    return doc


def spec_set(*remove: str, **fields: Any) -> Callable[[Doc], object]:
    """Drop the fields named in `remove` from spec, then set `fields`."""

    def change(doc: Doc) -> None:
        for name in remove:
            del doc["spec"][name]
        doc["spec"].update(fields)

    return change


def spec_del(field: str) -> Callable[[Doc], object]:
    return spec_set(field)


def step(index: int, value: Doc) -> Callable[[Doc], object]:
    return lambda d: d["spec"]["steps"].__setitem__(index, value)


def metric(**fields: Any) -> Callable[[Doc], object]:
    return lambda d: d["spec"]["steps"][1]["analysis"]["metrics"][0].update(fields)


MV, RS, MD = model_version(), rollout_strategy(), model_deployment()
PROMETHEUS = {"address": "http://prometheus:9090", "query": "vector(1)"}
MONITOR_CHECK: Doc = {
    "name": "ood",
    "provider": "builtin",
    "builtin": {"metric": "outOfDistribution"},
    "threshold": {"max": 0.05},
}

# Rules on metadata live only in the CRD: the operator never creates these objects.
SERVER_ONLY = {"md-name-starts-with-digit", "mv-name-too-long-for-a-label"}

# (case id, manifest, text the API server's answer must contain)
INVALID: list[tuple[str, Doc, str]] = [
    ("mv-uri-scheme", edit(MV, spec_set(uri="ftp://host/model.joblib")), "spec.uri"),
    ("mv-digest-uppercase", edit(MV, spec_set(sha256=DIGEST.upper())), "spec.sha256"),
    ("mv-digest-short", edit(MV, spec_set(sha256="abc123")), "spec.sha256"),
    (
        "mv-unknown-format",
        edit(MV, spec_set(format="tensorflow")),
        'Unsupported value: "tensorflow"',
    ),
    ("mv-missing-version", edit(MV, spec_del("version")), "spec.version: Required value"),
    ("mv-missing-digest", edit(MV, spec_del("sha256")), "spec.sha256: Required value"),
    (
        "mv-unknown-datatype",
        edit(MV, lambda d: d["spec"]["signature"]["inputs"][0].update(datatype="FP16")),
        'Unsupported value: "FP16"',
    ),
    (
        "mv-duplicate-input",
        edit(MV, lambda d: d["spec"]["signature"]["inputs"][1].update(name="sepal_length")),
        "duplicate entries for key",
    ),
    (
        "mv-labels-on-regression",
        edit(MV, lambda d: d["spec"]["signature"]["output"].update(kind="regression")),
        "classLabels are only allowed when kind is classification",
    ),
    (
        "mv-histogram-mismatch",
        edit(MV, lambda d: d["spec"]["reference"]["features"][0].update(fractions=[0.5, 0.5])),
        "fractions must have exactly one entry per bin",
    ),
    (
        "mv-fractions-not-summing-to-one",
        edit(MV, lambda d: d["spec"]["reference"]["features"][0].update(fractions=[0.3, 0.3, 0.3])),
        "fractions must sum to 1",
    ),
    ("rs-weight-150", edit(RS, step(0, {"setWeight": 150})), "less than or equal to 100"),
    ("rs-weight-negative", edit(RS, step(0, {"setWeight": -5})), "greater than or equal to 0"),
    (
        "rs-weights-decrease",
        edit(RS, step(2, {"setWeight": 10})),
        "setWeight values must not decrease",
    ),
    (
        "rs-two-actions",
        edit(RS, step(0, {"setWeight": 20, "pause": {}})),
        "exactly one of setWeight, pause, analysis, mirror",
    ),
    ("rs-no-action", edit(RS, step(0, {})), "exactly one of setWeight, pause, analysis, mirror"),
    ("rs-bad-duration", edit(RS, step(3, {"pause": {"duration": "5 minutes"}})), "duration"),
    (
        "rs-interval-too-short",
        edit(RS, lambda d: d["spec"]["steps"][1]["analysis"].update(interval="100ms")),
        "analysis interval must be at least 1s",
    ),
    (
        "rs-provider-without-block",
        edit(RS, metric(provider="prometheus")),
        "set exactly the block named by provider",
    ),
    (
        "rs-both-provider-blocks",
        edit(RS, metric(prometheus=PROMETHEUS)),
        "set exactly the block named by provider",
    ),
    ("rs-empty-threshold", edit(RS, metric(threshold={})), "threshold needs min, max or both"),
    (
        "rs-unknown-builtin",
        edit(RS, metric(builtin={"metric": "f1Score"})),
        'Unsupported value: "f1Score"',
    ),
    ("rs-mirror-200", edit(RS, step(5, {"mirror": 200})), "less than or equal to 100"),
    (
        "md-strategy-and-ref",
        edit(MD, spec_set(strategy=strategy_spec())),
        "set exactly one of strategyRef or strategy",
    ),
    (
        "md-no-strategy",
        edit(MD, spec_del("strategyRef")),
        "set exactly one of strategyRef or strategy",
    ),
    ("md-negative-replicas", edit(MD, spec_set(replicas=-1)), "greater than or equal to 0"),
    (
        "md-replicas-and-autoscaling",
        edit(MD, spec_set(autoscaling={"maxReplicas": 3})),
        "set replicas or autoscaling, not both",
    ),
    (
        "md-autoscaling-min-over-max",
        edit(MD, spec_set("replicas", autoscaling={"minReplicas": 5, "maxReplicas": 2})),
        "minReplicas must not exceed maxReplicas",
    ),
    (
        "md-gateway-without-settings",
        edit(MD, spec_set(traffic={"router": "gatewayAPI"})),
        "set traffic.gatewayAPI exactly when traffic.router is gatewayAPI",
    ),
    (
        "md-inline-weight-150",
        edit(MD, spec_set("strategyRef", strategy={"steps": [{"setWeight": 150}]})),
        "less than or equal to 100",
    ),
    ("md-missing-model-version", edit(MD, spec_del("modelVersion")), "spec.modelVersion: Required"),
    (
        "md-name-starts-with-digit",
        edit(MD, lambda d: d["metadata"].update(name="1iris")),
        "ModelDeployment name must be",
    ),
    (
        "md-unknown-field",
        edit(MD, spec_set(replica=3)),
        ".spec.replica: field not declared in schema",
    ),
    (
        "md-bad-quantity",
        edit(MD, spec_set(resources={"requests": {"cpu": "lots"}})),
        "spec.resources.requests.cpu",
    ),
    # Issue 11: values the operator could not deploy, refused here with the field named.
    # Durations and seconds: bounded so the state machine's date arithmetic cannot overflow.
    (
        "rs-pause-beyond-30-days",
        edit(RS, step(3, {"pause": {"duration": "721h"}})),
        "duration must be at most 720h",
    ),
    (
        "rs-pause-overflowing",
        edit(RS, step(3, {"pause": {"duration": "9999999999999999h"}})),
        "spec.steps[3].pause.duration",
    ),
    (
        "rs-interval-beyond-a-day",
        edit(RS, lambda d: d["spec"]["steps"][1]["analysis"].update(interval="25h")),
        "analysis interval must be at most 24h",
    ),
    (
        "rs-deadline-huge",
        edit(RS, spec_set(progressDeadlineSeconds=10**12)),
        "spec.progressDeadlineSeconds",
    ),
    (
        "rs-scale-down-delay-huge",
        edit(RS, spec_set(scaleDownDelaySeconds=10**12)),
        "spec.scaleDownDelaySeconds",
    ),
    (
        "rs-abort-delay-huge",
        edit(RS, spec_set(abortScaleDownDelaySeconds=10**12)),
        "spec.abortScaleDownDelaySeconds",
    ),
    # Integers copied into Deployments and HPAs: within int32 and sensible limits.
    ("md-replicas-beyond-int32", edit(MD, spec_set(replicas=2**31)), "spec.replicas"),
    (
        "md-max-replicas-beyond-limit",
        edit(MD, spec_set("replicas", autoscaling={"maxReplicas": 100000})),
        "spec.autoscaling.maxReplicas",
    ),
    # Quantities: no sign; names and requests <= limits as the Pod API has them.
    (
        "md-negative-quantity",
        edit(MD, spec_set(resources={"requests": {"cpu": "-1"}})),
        "spec.resources.requests.cpu",
    ),
    (
        "md-negative-integer-quantity",
        edit(MD, spec_set(resources={"limits": {"memory": -1}})),
        "spec.resources.limits.memory",
    ),
    (
        "md-unknown-resource-name",
        edit(MD, spec_set(resources={"requests": {"CPU": "1"}})),
        "spec.resources.requests",
    ),
    (
        "md-reserved-resource-name",
        edit(MD, spec_set(resources={"limits": {"kubernetes.io/gpu": 1}})),
        "are reserved",
    ),
    (
        "md-request-over-limit",
        edit(MD, spec_set(resources={"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}})),
        "a request must not exceed the limit",
    ),
    (
        "md-extended-without-limit",
        edit(MD, spec_set(resources={"requests": {"example.com/gpu": 1}})),
        "an extended resource (domain/name) needs a limit",
    ),
    (
        "md-extended-fraction",
        edit(MD, spec_set(resources={"limits": {"example.com/gpu": "500m"}})),
        "must be a whole number",
    ),
    # Gateway API fields: the HTTPRoute's own patterns.
    (
        "md-hostname-not-rfc1123",
        edit(
            MD,
            spec_set(
                traffic={
                    "router": "gatewayAPI",
                    "gatewayAPI": {"parentRefs": [{"name": "gw"}], "hostnames": ["Bad_Host"]},
                }
            ),
        ),
        "spec.traffic.gatewayAPI.hostnames[0]",
    ),
    (
        "md-section-name-invalid",
        edit(
            MD,
            spec_set(
                traffic={
                    "router": "gatewayAPI",
                    "gatewayAPI": {"parentRefs": [{"name": "gw", "sectionName": "HTTP Listener"}]},
                }
            ),
        ),
        "spec.traffic.gatewayAPI.parentRefs[0].sectionName",
    ),
    (
        "md-parent-namespace-invalid",
        edit(
            MD,
            spec_set(
                traffic={
                    "router": "gatewayAPI",
                    "gatewayAPI": {"parentRefs": [{"name": "gw", "namespace": "a.b"}]},
                }
            ),
        ),
        "spec.traffic.gatewayAPI.parentRefs[0].namespace",
    ),
    (
        "md-monitoring-compares-variants",
        edit(
            MD,
            spec_set(monitoring={"checks": [MONITOR_CHECK | {"builtin": {"metric": "agreement"}}]}),
        ),
        "spec.monitoring.checks[0].builtin.metric",
    ),
    (
        "md-monitoring-interval-too-short",
        edit(MD, spec_set(monitoring={"interval": "500ms", "checks": [MONITOR_CHECK]})),
        "monitoring interval must be at least 1s",
    ),
    (
        "md-monitoring-webhook-not-http",
        edit(MD, spec_set(monitoring={"webhook": {"url": "ftp://hooks/x"}})),
        "spec.monitoring.webhook.url",
    ),
    (
        "md-monitoring-check-for-not-a-duration",
        edit(MD, spec_set(monitoring={"checks": [MONITOR_CHECK | {"for": "soon"}]})),
        "spec.monitoring.checks[0].for",
    ),
    # Gates that cannot fail.
    (
        "rs-failure-limit-not-below-count",
        edit(RS, lambda d: d["spec"]["steps"][1]["analysis"].update(count=3, failureLimit=3)),
        "failureLimit must be less than count",
    ),
    # Pydantic rules with their CEL twins.
    (
        "mv-bin-edges-not-increasing",
        edit(
            MV,
            lambda d: d["spec"]["reference"]["features"][0].update(binEdges=[4, 6, 5, 8]),
        ),
        "binEdges must be strictly increasing",
    ),
    (
        "mv-bin-edges-repeated",
        edit(
            MV,
            lambda d: d["spec"]["reference"]["features"][0].update(binEdges=[4, 5, 5, 8]),
        ),
        "binEdges must be strictly increasing",
    ),
    (
        "mv-metric-key-too-long",
        edit(MV, spec_set(metrics={"a" * 64: 1.0})),
        "keys must be at most 63 characters long",
    ),
    (
        "mv-duplicate-reference-feature",
        edit(
            MV,
            lambda d: d["spec"]["reference"]["features"].append(
                d["spec"]["reference"]["features"][0]
            ),
        ),
        "duplicate entries for key",
    ),
    # Values that flow into child objects.
    (
        "mv-pvc-path-climbs-out",
        edit(MV, spec_set(uri="pvc://models/../etc/passwd")),
        "stays inside the claim",
    ),
    (
        "mv-pvc-claim-invalid",
        edit(MV, spec_set(uri="pvc://Models/iris.joblib")),
        "a pvc:// uri must be pvc://CLAIM/PATH",
    ),
    ("mv-image-with-space", edit(MV, spec_set(image="coalmine/serving: 1")), "spec.image"),
    (
        "mv-name-too-long-for-a-label",
        edit(MV, lambda d: d["metadata"].update(name="m" * 64)),
        "ModelVersion name must be at most 63 characters",
    ),
]


@pytest.fixture(scope="module")
def kube(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster with Coalmine's CRDs Established and an empty namespace."""
    install_crds(cluster)
    ensure_namespace(
        cluster,
        NAMESPACE,
        [
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/warn", "restricted"),
        ],
    )
    yield cluster
    cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def apply(kube: Cluster, *docs: Doc) -> tuple[int, str]:
    proc = kube.kubectl(
        "apply",
        "--server-side",
        "-n",
        NAMESPACE,
        "-f",
        "-",
        input=yaml.safe_dump_all(docs),
        check=False,
    )
    return proc.returncode, proc.stderr


def unique(doc: Doc, case: str) -> Doc:
    """Give a case its own object name, so one wrongly accepted case cannot mask another."""
    if case in SERVER_ONLY:
        return doc
    return edit(doc, lambda d: d["metadata"].update(name=f"bad-{case}"))


@pytest.mark.parametrize(("case", "doc", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_resource_is_rejected(kube: Cluster, case: str, doc: Doc, expected: str) -> None:
    code, stderr = apply(kube, unique(doc, case))
    assert code != 0, f"{case} was accepted"
    assert expected in stderr


def test_valid_resources_are_accepted(kube: Cluster) -> None:
    inline = edit(
        MD,
        spec_set(
            "strategyRef",
            "replicas",
            strategy=strategy_spec(),
            autoscaling={"minReplicas": 1, "maxReplicas": 4},
            resources={
                "requests": {"cpu": 1, "memory": "256Mi", "example.com/gpu": 1},
                "limits": {"cpu": "1.5", "memory": "1Gi", "example.com/gpu": "1"},
            },
            traffic={"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}},
            monitoring={
                "interval": "1m",
                "checks": [
                    MONITOR_CHECK | {"for": "2m", "keepFiringFor": "10m"},
                    {
                        "name": "p99",
                        "provider": "prometheus",
                        "prometheus": PROMETHEUS,
                        "threshold": {"max": 50},
                    },
                ],
                "webhook": {"url": "http://retrain.ml:8080/hooks", "timeoutSeconds": 3},
            },
        ),
    )
    inline["metadata"]["name"] = "iris-inline"
    code, stderr = apply(kube, MV, RS, MD, inline)
    assert code == 0, stderr
    stored = kube.get("modeldeployment", "iris", NAMESPACE)["spec"]
    assert stored["traffic"] == {"router": "kubernetes"}  # defaults applied by the server
    assert stored["serving"]["workers"] == 1
    stored_inline = kube.get("modeldeployment", "iris-inline", NAMESPACE)["spec"]
    assert stored_inline["strategy"]["steps"][3] == {"pause": {}}
    assert stored_inline["monitoring"]["checks"][0]["for"] == "2m"


def test_model_version_spec_is_immutable(kube: Cluster) -> None:
    original = model_version("immutable-v1")
    code, stderr = apply(kube, original)
    assert code == 0, stderr
    changed = edit(original, spec_set(uri="https://models.example/other.joblib"))
    code, stderr = apply(kube, changed)
    assert code != 0
    assert "ModelVersion spec is immutable" in stderr
    # Metadata stays editable: approval is an annotation on an immutable version.
    approved = edit(
        original, lambda d: d["metadata"].update(annotations={"coalmine.dev/approved-by": "ana"})
    )
    code, stderr = apply(kube, approved)
    assert code == 0, stderr


def test_status_accepts_what_the_operator_writes(kube: Cluster) -> None:
    code, stderr = apply(kube, model_deployment("iris-status"))
    assert code == 0, stderr
    status = {
        "status": {
            "observedGeneration": 1,
            "phase": "Progressing",
            "stable": {"modelVersion": "iris-v1", "version": "v1", "revision": 1, "weight": 80},
            "canary": {"modelVersion": "iris-v2", "version": "v2", "revision": 2, "weight": 20},
            "currentStepIndex": 1,
            "stepStartedAt": "2026-01-01T00:00:00Z",
            "analysisRun": {"stepIndex": 1, "startedAt": "2026-01-01T00:00:00Z", "failures": 1},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "Progressing",
                    "message": "canary at 20%",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "observedGeneration": 1,
                }
            ],
        }
    }
    kube.kubectl(
        "patch",
        "modeldeployment",
        "iris-status",
        "-n",
        NAMESPACE,
        "--subresource=status",
        "--type=merge",
        "-p",
        yaml.safe_dump(status),
    )
    stored = kube.get("modeldeployment", "iris-status", NAMESPACE)["status"]
    assert stored["canary"]["weight"] == 20
    assert stored["analysisRun"]["failures"] == 1
    table = kube.kubectl("get", "modeldeployment", "iris-status", "-n", NAMESPACE).stdout
    assert "v2" in table
    assert "Progressing" in table


def test_a_snapshot_whose_maps_empty_out_is_applied_as_the_operator_applies_it(
    kube: Cluster,
) -> None:
    """Server-side apply turns a map the field manager emptied into null, which the CRD
    refuses: a stable variant with no ready pod to scrape once did that. The operator's
    status leaves empty maps out, and the server takes it."""
    code, stderr = apply(kube, model_deployment("iris-ssa"))
    assert code == 0, stderr
    client = Kube(config.new_client_from_config(str(kube.kubeconfig)))

    def status(counters: VariantCounters) -> dict[str, Any]:
        started = datetime(2026, 1, 1, tzinfo=UTC)
        run = AnalysisRun(step_index=1, started_at=started, stable_snapshot=counters)
        return ModelDeploymentStatus(phase="Progressing", analysis_run=run).to_json()

    scraped = VariantCounters(pods=2, requests=10, latency_buckets={"0.005": 9, "+Inf": 10})
    client.apply_status("ModelDeployment", NAMESPACE, "iris-ssa", status(scraped))
    client.apply_status("ModelDeployment", NAMESPACE, "iris-ssa", status(VariantCounters()))
    stored = kube.get("modeldeployment", "iris-ssa", NAMESPACE)["status"]["analysisRun"]
    assert stored["stableSnapshot"]["pods"] == 0
    assert "latencyBuckets" not in stored["stableSnapshot"]
    assert ModelDeploymentStatus.model_validate({"analysisRun": stored}).analysis_run is not None


def test_built_objects_pass_server_validation_and_restricted_pod_security(kube: Cluster) -> None:
    md_doc = edit(MD, spec_set("replicas", autoscaling={"maxReplicas": 3}))
    md_doc["metadata"] |= {"namespace": NAMESPACE, "uid": "00000000-0000-0000-0000-000000000001"}
    md = ModelDeployment.model_validate(md_doc)
    mv = ModelVersion.model_validate(MV)
    objects = [
        build_deployment(md, mv, "stable", None),
        build_deployment(md, mv, "canary", 1),
        build_service(md),
        build_service(md, "canary"),
        build_hpa(md),
    ]
    proc = kube.kubectl(
        "create", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(objects), check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "PodSecurity" not in proc.stderr
    assert proc.stdout.count("(server dry run)") == len(objects)
