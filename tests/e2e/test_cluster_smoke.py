"""The cluster itself: probes, Services through kube-proxy, DNS, rolling updates, GC.

Everything the product relies on is exercised here with a tiny HTTP image, so
a failure points at the cluster rather than at Coalmine.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.support.client import InClusterClient, http_server_deployment
from tests.support.cluster import Cluster, wait_for


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": "NodePort",
            "selector": {"app": name},
            "ports": [{"port": 80, "targetPort": "http", "name": "http"}],
        },
    }


def get_json(url: str, timeout: float = 5) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def node_port_url(cluster: Cluster, namespace: str, name: str) -> str:
    svc = cluster.get("service", name, namespace)
    return f"http://127.0.0.1:{svc['spec']['ports'][0]['nodePort']}"


def deploy(cluster: Cluster, namespace: str, name: str, image: str, replicas: int) -> str:
    cluster.apply(http_server_deployment(name, image, replicas), service(name), namespace=namespace)
    cluster.kubectl(
        "-n", namespace, "wait", "--for=condition=Available", f"deployment/{name}", "--timeout=120s"
    )
    url = node_port_url(cluster, namespace, name)
    # kube-proxy programs a new Service a moment (seconds on a busy node) after
    # its pods are Ready. Connections refused before that leave conntrack
    # entries that refuse later connections from the same source port, so a
    # burst of load must not start until the Service answers.
    wait_for("kube-proxy to program the Service", lambda: get_json(url + "/"), interval=1)
    return url


def ready_pods(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    pods = json.loads(
        cluster.kubectl("-n", namespace, "get", "pods", "-l", f"app={name}", "-o", "json").stdout
    )["items"]
    return [
        p
        for p in pods
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
        and not p["metadata"].get("deletionTimestamp")
    ]


def test_node_is_ready(cluster: Cluster) -> None:
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert nodes, "the cluster has no node"
    for node in nodes:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert [c["status"] for c in ready] == ["True"], node["status"]["conditions"]


def test_the_metrics_api_reports_the_node(cluster: Cluster) -> None:
    """metrics-server, through the aggregation layer: what HPAs and `kubectl top` read."""
    if cluster.kind != "local":
        pytest.skip("the metrics API is part of the local cluster; kind has no metrics-server")

    def top() -> str | None:
        out = cluster.kubectl("top", "node", "--no-headers", check=False)
        return out.stdout if out.returncode == 0 and out.stdout.strip() else None

    line = wait_for("the metrics API to report the node", top, timeout=120, interval=2)
    name, cores, _cpu_share, memory, _memory_share = line.split()[:5]
    assert name == "coalmine-node"
    assert cores.endswith("m")
    assert memory.endswith("Mi")


def test_probed_deployment_serves_through_its_service(
    cluster: Cluster, namespace: str, test_http_image: str
) -> None:
    url = deploy(cluster, namespace, "web", test_http_image, replicas=1)
    body = wait_for("a response through the NodePort", lambda: get_json(url + "/"))
    assert body["version"] == "v1"
    assert body["pod"].startswith("web-")


def test_pods_reach_a_service_by_dns_name(
    cluster: Cluster, namespace: str, test_http_image: str
) -> None:
    deploy(cluster, namespace, "backend", test_http_image, replicas=1)
    front = deploy(cluster, namespace, "front", test_http_image, replicas=1)
    target = f"http://backend.{namespace}.svc.cluster.local/"
    fetched = wait_for(
        "the front pod to reach the backend by DNS",
        lambda: get_json(f"{front}/fetch?url={urllib.parse.quote(target)}"),
    )
    assert fetched["status"] == 200
    assert json.loads(fetched["body"])["pod"].startswith("backend-")


def test_unready_pod_gets_no_traffic(
    cluster: Cluster, namespace: str, test_http_image: str
) -> None:
    url = deploy(cluster, namespace, "pair", test_http_image, replicas=2)
    pods = ready_pods(cluster, namespace, "pair")
    assert len(pods) == 2
    sick = pods[0]
    urllib.request.urlopen(f"http://{sick['status']['podIP']}:8080/fail-ready", timeout=5).read()
    wait_for(
        "the sick pod to turn unready", lambda: len(ready_pods(cluster, namespace, "pair")) == 1
    )
    # kube-proxy drops the endpoint shortly after readiness flips.
    seen: set[str] = set()

    def only_healthy_answers() -> bool:
        answers = {get_json(url + "/")["pod"] for _ in range(30)}
        seen.update(answers)
        return answers == {pods[1]["metadata"]["name"]}

    wait_for("traffic to avoid the unready pod", only_healthy_answers, timeout=30)
    assert pods[1]["metadata"]["name"] in seen


def test_rolling_update_keeps_serving(
    cluster: Cluster, namespace: str, test_http_image: str
) -> None:
    deploy(cluster, namespace, "roll", test_http_image, replicas=2)
    client = InClusterClient(cluster, namespace, test_http_image)
    url = f"http://roll.{namespace}.svc.cluster.local/"
    wait_for("the Service to answer in the cluster", lambda: client.request(url)[0] == 200)
    # Bounded: one new connection per request, so every request is balanced anew.
    client.start_load(url, [{}], concurrency=4, max_requests=200_000, max_seconds=300)
    wait_for("answers from v1", lambda: client.load_status()["versions"].get("v1", 0) > 50)
    cluster.apply(
        http_server_deployment("roll", test_http_image, 2, version="v2"), namespace=namespace
    )
    cluster.kubectl("-n", namespace, "rollout", "status", "deployment/roll", "--timeout=180s")
    wait_for("answers from v2", lambda: client.load_status()["versions"].get("v2", 0) > 50)
    load = client.stop_load()
    assert load["failed"] == 0, (load["errors"], load["seconds"])
    assert load["versions"]["v1"] > 0
    assert load["versions"]["v2"] > 0


def test_deleting_a_deployment_collects_its_pods(
    cluster: Cluster, namespace: str, test_http_image: str
) -> None:
    deploy(cluster, namespace, "gc", test_http_image, replicas=2)
    assert len(ready_pods(cluster, namespace, "gc")) == 2
    cluster.kubectl("-n", namespace, "delete", "deployment", "gc", "--wait=false")

    def pods_gone() -> bool:
        out = cluster.kubectl(
            "-n", namespace, "get", "pods,replicasets", "-l", "app=gc", "-o", "name"
        )
        return out.stdout.strip() == ""

    wait_for("owner-reference GC to remove the ReplicaSet and pods", pods_gone, timeout=120)
