"""The operator serves ModelVersions through ModelDeployments on a real cluster (issue 4)."""

from __future__ import annotations

import copy
import json
import random
import time
from typing import Any

import pytest
import skops.io as sio

from tests.support.client import InClusterClient
from tests.support.cluster import Cluster, wait_for
from tests.support.grpc_client import grpc_infer
from tests.support.models import HOST_ROOT
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.usefixtures("operator")

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def model_deployment(name: str, model_version: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "coalmine.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "modelVersion": model_version,
            "replicas": replicas,
            "strategy": {"steps": [{"setWeight": 50}, {"pause": {"duration": "5s"}}]},
        },
    }


def infer_body(rows: list[list[float]]) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": [len(rows), 4],
                "datatype": "FP64",
                "data": [v for row in rows for v in row],
            }
        ]
    }


def infer_url(namespace: str, name: str) -> str:
    return f"http://{name}.{namespace}.svc.cluster.local/v2/models/{name}/infer"


def phase(cluster: Cluster, kind: str, name: str, namespace: str) -> str | None:
    status = cluster.get(kind, name, namespace).get("status") or {}
    value: str | None = status.get("phase")
    return value


def wait_validated(
    cluster: Cluster, name: str, namespace: str, expect: str = "Validated"
) -> dict[str, Any]:
    wait_for(
        f"ModelVersion {name} to be {expect}",
        lambda: phase(cluster, "modelversion", name, namespace) in ("Validated", "Invalid"),
        timeout=180,
    )
    mv = cluster.get("modelversion", name, namespace)
    assert mv["status"]["phase"] == expect, mv["status"]
    return mv


def serve_v1(
    cluster: Cluster, namespace: str, models: dict[str, dict[str, Any]], name: str = "iris"
) -> None:
    """iris-v1 validated and served Ready by a ModelDeployment called `name`."""
    cluster.apply(models["iris-v1"], namespace=namespace)
    wait_validated(cluster, "iris-v1", namespace)
    cluster.apply(model_deployment(name, "iris-v1"), namespace=namespace)
    cluster.wait_ready(f"modeldeployment/{name}", namespace)


def test_serves_a_model_version_and_answers_predictions(
    cluster: Cluster,
    namespace: str,
    models: dict[str, dict[str, Any]],
    client: InClusterClient,
    trained: Any,
) -> None:
    cluster.apply(models["iris-v1"], namespace=namespace)
    mv = wait_validated(cluster, "iris-v1", namespace)
    assert mv["status"]["verifiedSha256"] == models["iris-v1"]["spec"]["sha256"]

    cluster.apply(model_deployment("iris", "iris-v1"), namespace=namespace)
    cluster.wait_ready("modeldeployment/iris", namespace)
    md = cluster.get("modeldeployment", "iris", namespace)
    assert md["status"]["phase"] == "Healthy"
    assert md["status"]["stable"]["modelVersion"] == "iris-v1"
    assert md["status"]["url"] == f"http://iris.{namespace}.svc.cluster.local"
    assert md["status"]["observedGeneration"] == md["metadata"]["generation"]

    status, answer = wait_for(
        "a prediction through the Service",
        lambda: (
            (r := client.request(infer_url(namespace, "iris"), infer_body(ROWS)))[0] == 200 and r
        ),
        timeout=60,
    )
    expected = sio.load(trained / "iris-v1.skops", trusted=[]).predict(ROWS).tolist()
    assert status == 200
    assert answer["outputs"][0]["data"] == expected
    assert answer["model_version"] == "v1"

    row = cluster.kubectl("-n", namespace, "get", "modeldeployment", "iris", "--no-headers").stdout
    # no canary: its columns are empty; PODS is stable's ready/desired
    assert row.split()[:4] == ["iris", "v1", "1/1", "Healthy"], row

    # The operator passed the signature: one tensor per feature, by name, in any order.
    names = [i["name"] for i in models["iris-v1"]["spec"]["signature"]["inputs"]]
    per_feature = {
        "inputs": [
            {"name": n, "shape": [len(ROWS)], "datatype": "FP64", "data": [r[i] for r in ROWS]}
            for i, n in reversed(list(enumerate(names)))
        ]
    }
    status, answer = client.request(infer_url(namespace, "iris"), per_feature)
    assert status == 200, answer
    assert answer["outputs"][0]["data"] == expected

    # V2 gRPC through the same Service, on its grpc port.
    target = f"iris.{namespace}.svc.cluster.local:8081"
    answer = grpc_infer(cluster, namespace, target, "iris", ROWS)
    assert answer == {"ready": True, "model_version": "v1", "data": expected}


def test_invalid_versions_are_refused_with_the_reason(
    cluster: Cluster, namespace: str, models: dict[str, dict[str, Any]]
) -> None:
    bad_digest = copy.deepcopy(models["iris-v1"])
    bad_digest["metadata"]["name"] = "iris-bad-digest"
    bad_digest["spec"]["sha256"] = "0" * 64
    missing = copy.deepcopy(models["iris-v1"])
    missing["metadata"]["name"] = "iris-missing"
    missing["spec"]["uri"] = "pvc://coalmine-models/no-such-file.skops"
    cluster.apply(bad_digest, missing, models["iris-corrupt"], namespace=namespace)

    for name, words in [
        ("iris-bad-digest", "sha256"),
        ("iris-missing", "no-such-file"),
        ("iris-corrupt", "skops"),
    ]:
        mv = wait_validated(cluster, name, namespace, expect="Invalid")
        assert words in mv["status"]["message"], mv["status"]["message"]
        stalled = [c for c in mv["status"]["conditions"] if c["type"] == "Stalled"]
        assert [c["status"] for c in stalled] == ["True"]

    cluster.apply(model_deployment("broken", "iris-bad-digest"), namespace=namespace)
    wait_for(
        "the ModelDeployment to say why it cannot serve",
        lambda: (
            "iris-bad-digest"
            in (
                cluster.get("modeldeployment", "broken", namespace).get("status", {}).get("message")
                or ""
            )
        ),
        timeout=60,
    )
    md = cluster.get("modeldeployment", "broken", namespace)
    ready = [c for c in md["status"]["conditions"] if c["type"] == "Ready"]
    assert [c["status"] for c in ready] == ["False"]


def test_an_invalid_new_version_does_not_disturb_what_serves(
    cluster: Cluster, namespace: str, models: dict[str, dict[str, Any]], client: InClusterClient
) -> None:
    cluster.apply(models["iris-corrupt"], namespace=namespace)
    serve_v1(cluster, namespace, models)
    url = infer_url(namespace, "iris")
    # kube-proxy programs a new Service a moment after its pods are Ready.
    wait_for("v1 through the Service", lambda: client.request(url, infer_body(ROWS))[0] == 200)
    wait_validated(cluster, "iris-corrupt", namespace, expect="Invalid")
    cluster.apply(model_deployment("iris", "iris-corrupt"), namespace=namespace)
    wait_for(
        "status to name the invalid version",
        lambda: (
            "iris-corrupt"
            in (cluster.get("modeldeployment", "iris", namespace)["status"].get("message") or "")
        ),
        timeout=60,
    )
    md = cluster.get("modeldeployment", "iris", namespace)
    assert md["status"]["stable"]["modelVersion"] == "iris-v1"
    status, answer = client.request(url, infer_body(ROWS))
    assert status == 200
    assert answer["model_version"] == "v1"


def test_operator_killed_while_creating_five_deployments_converges(
    cluster: Cluster, namespace: str, models: dict[str, dict[str, Any]], operator: OperatorProcess
) -> None:
    cluster.apply(models["iris-v1"], namespace=namespace)
    wait_validated(cluster, "iris-v1", namespace)
    names = [f"md{i}" for i in range(5)]
    rng = random.Random(4)
    for name in names:
        cluster.apply(model_deployment(name, "iris-v1"), namespace=namespace)
        time.sleep(rng.uniform(0.0, 1.5))  # spread the kills over different moments
        operator.kill()
        operator.start()
    for name in names:
        cluster.wait_ready(f"modeldeployment/{name}", namespace, timeout=240)
    deployments = json.loads(
        cluster.kubectl("-n", namespace, "get", "deployments", "-o", "json").stdout
    )["items"]
    owned = sorted(d["metadata"]["name"] for d in deployments if d["metadata"]["name"] != "client")
    assert owned == sorted(f"{n}-stable" for n in names)
    for d in deployments:
        refs = d["metadata"].get("ownerReferences", [])
        assert len(refs) <= 1
    assert "Patching failed" not in operator.log()


def test_operator_owns_only_status_and_its_children(
    cluster: Cluster, namespace: str, models: dict[str, dict[str, Any]]
) -> None:
    serve_v1(cluster, namespace, models)
    for kind, name in [("modeldeployment", "iris"), ("modelversion", "iris-v1")]:
        managed = cluster.kubectl(
            "-n", namespace, "get", kind, name, "-o", "json", "--show-managed-fields"
        ).stdout
        for entry in json.loads(managed)["metadata"]["managedFields"]:
            if entry["manager"] == "coalmine":
                assert entry.get("subresource") == "status", entry
                assert set(entry["fieldsV1"]) <= {"f:status"}, entry["fieldsV1"]
    # Re-applying the user's manifest changes nothing: no field of it is the operator's.
    dry = cluster.kubectl(
        "-n",
        namespace,
        "apply",
        "--server-side",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        "-",
        input=json.dumps(model_deployment("iris", "iris-v1")),
    ).stdout
    before = cluster.get("modeldeployment", "iris", namespace)
    assert json.loads(dry)["metadata"]["generation"] == before["metadata"]["generation"]


def test_deleting_a_model_deployment_removes_what_it_created(
    cluster: Cluster, namespace: str, models: dict[str, dict[str, Any]]
) -> None:
    serve_v1(cluster, namespace, models, name="gone")
    selector = "coalmine.dev/deployment=gone"
    kinds = "deployments,replicasets,services,pods"
    assert cluster.kubectl("-n", namespace, "get", kinds, "-l", selector, "-o", "name").stdout
    cluster.kubectl("-n", namespace, "delete", "modeldeployment", "gone", "--wait=true")
    wait_for(
        "garbage collection of everything the ModelDeployment owned",
        lambda: (
            cluster.kubectl(
                "-n", namespace, "get", kinds, "-l", selector, "-o", "name"
            ).stdout.strip()
            == ""
        ),
        timeout=120,
    )
    assert (HOST_ROOT / namespace).exists()  # the models themselves are the user's
