"""The gatewayAPI router on a real Gateway API implementation (Traefik) under load.

Requests go through Traefik, which splits them by the HTTPRoute the operator
writes; the served model_version in each answer tells which variant answered.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from coalmine.api import ModelDeployment
from coalmine.resources.httproute import build_httproute
from tests.e2e.test_rollouts import coalmine
from tests.support import gateway
from tests.support.client import InClusterClient
from tests.support.cluster import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.rollout import ROWS, Rollout, body, promoted_to, strategy

URL = gateway.URL + "/v2/models/iris/infer"
REQUESTS = 2_500  # the issue asks for at least 2,000 per measured weight


@pytest.fixture(scope="module")
def traefik(cluster: Cluster, crds: None) -> None:
    gateway.start_traefik(cluster)


def deployment(version: str, strat: dict[str, Any], router: str = "gatewayAPI") -> dict[str, Any]:
    traffic: dict[str, Any] = {"router": router}
    if router == "gatewayAPI":
        traffic["gatewayAPI"] = {"parentRefs": [gateway.parent_ref()]}
    return {
        "apiVersion": "coalmine.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris"},
        "spec": {"modelVersion": version, "replicas": 2, "strategy": strat, "traffic": traffic},
    }


def route_state(cluster: Cluster, namespace: str) -> tuple[dict[str, int], list[Any]]:
    httproute = cluster.get("httproute", "iris", namespace)
    (rule,) = httproute["spec"]["rules"]
    return {b["name"]: b["weight"] for b in rule["backendRefs"]}, rule.get("filters", [])


def mirror_share(cluster: Cluster, namespace: str) -> int:
    """The percent of requests the stable pods are told to copy to the canary."""
    config = cluster.get("configmap", "iris-mirror", namespace)
    share: int = json.loads(config["data"]["mirror.json"])["percent"]
    return share


def canary_share(client: InClusterClient, requests: int) -> tuple[float, dict[str, Any]]:
    """Percent of `requests` predictions through the Gateway that v2 answered."""
    bodies = [body(r) for r in ROWS]
    client.start_load(URL, bodies, concurrency=4, max_requests=requests, max_seconds=300)
    load: dict[str, Any] = wait_for("the load run to end", lambda: ended(client), timeout=320)
    versions = load["versions"]
    return 100 * versions.get("v2", 0) / max(1, sum(versions.values())), load


def routed(cluster: Cluster, namespace: str) -> tuple[str, str] | None:
    """The ModelDeployment's TrafficRouted condition: (status, reason)."""
    conditions = cluster.get("modeldeployment", "iris", namespace)["status"]["conditions"]
    found = next((c for c in conditions if c["type"] == "TrafficRouted"), None)
    return (found["status"], found["reason"]) if found else None


def ended(client: InClusterClient) -> dict[str, Any] | None:
    s = client.load_status()
    return None if s["running"] else s


def answer(client: InClusterClient) -> str | None:
    """The model version that answered one prediction through the Gateway, if any did."""
    code, decoded = client.request(URL, body(ROWS[0]))
    return decoded.get("model_version") if code == 200 and isinstance(decoded, dict) else None


def paused_at(rollout_status: dict[str, Any], weight: int, mirror: int | None = None) -> bool:
    canary = rollout_status.get("canary") or {}
    return (
        rollout_status.get("phase") == "Paused"
        and canary.get("weight") == weight
        and canary.get("mirror") == mirror
    )


def test_gateway_splits_by_exact_weight_and_never_breaks_on_mirror(
    cluster: Cluster,
    namespace: str,
    client: InClusterClient,
    models: dict[str, dict[str, Any]],
    operator: OperatorProcess,
    traefik: None,
) -> None:
    steps: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {}}, {"mirror": 100}]
    steps += [{"pause": {}}, {"setWeight": 50}, {"pause": {}}]
    strat = strategy(steps)
    Rollout(cluster, namespace, client, models).register("iris-v1", "iris-v2")
    cluster.apply(deployment("iris-v1", strat), namespace=namespace)
    cluster.wait_ready("modeldeployment/iris", namespace)
    assert route_state(cluster, namespace) == ({"iris-stable": 100}, [])
    wait_for("Traefik to route to iris", lambda: answer(client) is not None, timeout=60)
    wait_for("TrafficRouted", lambda: routed(cluster, namespace) == ("True", "RouteAccepted"))

    def status() -> dict[str, Any]:
        return cluster.get("modeldeployment", "iris", namespace).get("status") or {}

    def mirror_events() -> list[str]:
        reason = "--field-selector=reason=MirrorUnsupported"
        found = cluster.kubectl("-n", namespace, "get", "events", reason, "-o", "name")
        return found.stdout.split()

    cluster.apply(deployment("iris-v2", strat), namespace=namespace)
    wait_for("the canary paused at 20%", lambda: paused_at(status(), 20), timeout=180)
    assert route_state(cluster, namespace) == ({"iris-stable": 80, "iris-canary": 20}, [])
    wait_for("Traefik to route to the canary", lambda: answer(client) == "v2", timeout=60)
    share, load = canary_share(client, REQUESTS)
    print(f"\ngatewayAPI at 20%: canary share {share:.2f}% of {load['ok']} requests")
    assert load["failed"] == 0, load["errors"]
    assert load["ok"] >= 2_000
    assert abs(share - 20) <= 3

    coalmine("promote", "iris", "-n", namespace, cluster=cluster)
    # The canary grows to 2 pods for the copies of 100% (1 at 20%); the step waits for them.
    wait_for("the mirror step", lambda: paused_at(status(), 20, 100), timeout=120)
    # The stable pods copy the shadow traffic (their mirror file); the route never mirrors.
    assert route_state(cluster, namespace) == ({"iris-stable": 80, "iris-canary": 20}, [])
    assert mirror_share(cluster, namespace) == 100
    assert mirror_events() == []
    _, load = canary_share(client, 500)
    assert load["failed"] == 0, load["errors"]

    coalmine("promote", "iris", "-n", namespace, cluster=cluster)
    wait_for("the canary paused at 50%", lambda: paused_at(status(), 50, 100), timeout=60)
    assert route_state(cluster, namespace) == ({"iris-stable": 50, "iris-canary": 50}, [])
    share, load = canary_share(client, REQUESTS)
    print(f"gatewayAPI at 50%: canary share {share:.2f}% of {load['ok']} requests")
    assert load["failed"] == 0, load["errors"]
    assert abs(share - 50) <= 3

    coalmine("promote", "iris", "-n", namespace, cluster=cluster)
    wait_for("v2 promoted", lambda: promoted_to("iris-v2")(status()), timeout=120)
    back: tuple[dict[str, int], list[Any]] = ({"iris-stable": 100}, [])
    wait_for("one backend again", lambda: route_state(cluster, namespace) == back, timeout=60)
    assert answer(client) == "v2"
    assert mirror_events() == []

    cluster.apply(deployment("iris-v2", strat, router="kubernetes"), namespace=namespace)
    get_route = ("-n", namespace, "get", "httproute", "iris")
    gone = lambda: cluster.kubectl(*get_route, check=False).returncode != 0  # noqa: E731
    wait_for("the route to be deleted", gone, timeout=60)
    wait_for("TrafficRouted to go with it", lambda: routed(cluster, namespace) is None)


def test_every_route_shape_passes_the_gateway_api_schema(
    cluster: Cluster, namespace: str, traefik: None
) -> None:
    doc = deployment("iris-v1", strategy())
    doc["metadata"] |= {"namespace": namespace, "uid": "00000000-0000-0000-0000-000000000001"}
    md = ModelDeployment.model_validate(doc)
    for weight in [None, 0, 20, 100]:
        route = build_httproute(md, weight)
        route["metadata"].pop("ownerReferences")  # the owner does not exist in this test
        dry_run = ("apply", "--server-side", "--dry-run=server", "-f", "-")
        cluster.kubectl(*dry_run, input=json.dumps(route))
    # Refs the Gateway API would refuse together (a duplicate; a listener of a Gateway
    # also named whole) are accepted by our admission, so the route must still deploy.
    settings = doc["spec"]["traffic"]["gatewayAPI"]
    first = settings["parentRefs"][0]
    settings["parentRefs"] = [first, dict(first), {**first, "sectionName": "web"}]
    route = build_httproute(ModelDeployment.model_validate(doc), 20)
    route["metadata"].pop("ownerReferences")
    cluster.kubectl(*dry_run, input=json.dumps(route))
