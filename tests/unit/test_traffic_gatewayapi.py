"""The Gateway API router: an HTTPRoute with exact weights, which never mirrors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coalmine.api import ModelDeployment
from coalmine.resources.httproute import build_httproute
from coalmine.traffic import router_for
from coalmine.traffic.gatewayapi import route as gateway_route
from coalmine.traffic.gatewayapi import route_acceptance
from tests.unit.test_traffic_kubernetes import hpa_floor, main_selector, md

GATEWAY = {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "edge"}]}}


def gw(**spec: Any) -> ModelDeployment:
    return md(traffic=GATEWAY, **spec)


def the_route(objects: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    (found,) = (o for o in objects if o["kind"] == "HTTPRoute")
    return found


def weights(httproute: dict[str, Any]) -> dict[str, int]:
    (rule,) = httproute["spec"]["rules"]
    return {b["name"]: b["weight"] for b in rule["backendRefs"]}


def test_no_canary_routes_everything_to_stable_and_leaves_the_canary_out() -> None:
    plan = gateway_route(gw(replicas=3), canary_running=False, weight=0, mirror=0, stable_pods=None)
    assert (plan.stable_replicas, plan.canary_replicas, plan.canary_share) == (3, 0, 0)
    assert weights(the_route(plan.objects)) == {"iris-stable": 100}
    assert main_selector(plan.objects)["coalmine.dev/variant"] == "stable"


@pytest.mark.parametrize("weight", [0, 1, 20, 50, 99])
def test_weights_are_exact_whatever_the_pod_counts(weight: int) -> None:
    plan = gateway_route(
        gw(replicas=1),
        canary_running=True,
        weight=weight,
        mirror=0,
        stable_pods=None,
    )
    assert weights(the_route(plan.objects)) == {"iris-stable": 100 - weight, "iris-canary": weight}
    assert plan.canary_share == weight
    assert plan.canary_replicas == 1
    # Callers that bypass the Gateway keep getting the proven version.
    assert main_selector(plan.objects)["coalmine.dev/variant"] == "stable"


def test_full_weight_moves_the_client_service_too() -> None:
    plan = gateway_route(
        gw(replicas=2), canary_running=True, weight=100, mirror=0, stable_pods=None
    )
    assert weights(the_route(plan.objects)) == {"iris-stable": 0, "iris-canary": 100}
    assert plan.canary_replicas == 2
    assert main_selector(plan.objects)["coalmine.dev/variant"] == "canary"


def test_canary_is_sized_for_its_share() -> None:
    sizes = [
        gateway_route(
            gw(replicas=4),
            canary_running=True,
            weight=w,
            mirror=0,
            stable_pods=None,
        ).canary_replicas
        for w in (0, 10, 25, 50, 99, 100)
    ]
    assert sizes == [1, 1, 1, 2, 4, 4]


def test_while_the_canary_takes_a_share_the_hpa_cannot_shrink_stable() -> None:
    auto = gw(replicas=None, autoscaling={"minReplicas": 1, "maxReplicas": 8})
    floors = [
        hpa_floor(
            gateway_route(auto, canary_running=True, weight=w, mirror=0, stable_pods=5).objects
        )
        for w in (0, 25, 50, 100)
    ]
    assert floors == [1, 5, 5, 5]
    ended = gateway_route(auto, canary_running=False, weight=0, mirror=0, stable_pods=5,
                          stable_floor=5)  # fmt: skip
    assert hpa_floor(ended.objects) == 5, "after a rollout the held floor stays (stableFloor)"


@pytest.mark.parametrize(("weight", "mirror", "pods"), [(0, 100, 4), (10, 50, 2), (50, 10, 2)])
def test_the_canary_is_sized_for_the_stable_pods_copies_too(
    weight: int, mirror: int, pods: int
) -> None:
    plan = gateway_route(
        gw(replicas=4), canary_running=True, weight=weight, mirror=mirror, stable_pods=None
    )
    assert weights(the_route(plan.objects)) == {"iris-stable": 100 - weight, "iris-canary": weight}
    assert plan.canary_share == weight
    assert plan.canary_replicas == pods


@given(st.booleans(), st.integers(0, 100), st.integers(0, 100))
def test_the_route_never_mirrors(canary_running: bool, weight: int, mirror: int) -> None:
    """The stable pods copy shadow traffic and compare the answers; a Gateway's mirror would
    discard the canary's answer and double its copies."""
    plan = gateway_route(
        gw(replicas=2), canary_running=canary_running, weight=weight, mirror=mirror, stable_pods=4
    )
    assert all("filters" not in rule for rule in the_route(plan.objects)["spec"]["rules"])


def test_parent_refs_and_hostnames_are_passed_through_with_defaults_written_out() -> None:
    traffic = {
        "router": "gatewayAPI",
        "gatewayAPI": {
            "parentRefs": [
                {"name": "edge", "namespace": "gateways", "sectionName": "http", "port": 8080}
            ],
            "hostnames": ["models.example.com"],
        },
    }
    httproute = build_httproute(md(traffic=traffic), canary_weight=5)
    assert httproute["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert httproute["metadata"]["name"] == "iris"
    assert httproute["metadata"]["namespace"] == "ml"
    assert httproute["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert httproute["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "edge",
            "namespace": "gateways",
            "sectionName": "http",
            "port": 8080,
        }
    ]
    assert httproute["spec"]["hostnames"] == ["models.example.com"]
    (rule,) = httproute["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]


def test_a_deployment_without_gateway_settings_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no traffic\.gatewayAPI"):
        build_httproute(md(), canary_weight=10)


def test_the_kubernetes_router_writes_no_route() -> None:
    kube = md(replicas=2)
    plan = router_for(kube).route(
        kube,
        canary_running=True,
        weight=20,
        mirror=50,
        stable_pods=None,
        canary_ready=0,
        stable_floor=None,
    )
    assert not any(o["kind"] == "HTTPRoute" for o in plan.objects)


@given(st.integers(1, 20), st.integers(0, 100), st.integers(0, 100))
def test_weights_always_sum_to_100(stable: int, weight: int, mirror: int) -> None:
    plan = gateway_route(
        gw(replicas=stable),
        canary_running=True,
        weight=weight,
        mirror=mirror,
        stable_pods=None,
    )
    assert sum(weights(the_route(plan.objects)).values()) == 100
    assert 1 <= plan.canary_replicas <= stable


def parent(name: str, **conditions: str) -> dict[str, Any]:
    return {
        "parentRef": {"name": name},
        "conditions": [
            {"type": t, "status": s, "reason": f"R{t}", "message": f"m{t}"}
            for t, s in conditions.items()
        ],
    }


@pytest.mark.parametrize(
    ("parents", "status", "reason", "says"),
    [
        ([], "Unknown", "AwaitingGateway", "no Gateway has reported"),
        ([parent("edge", ResolvedRefs="True")], "Unknown", "AwaitingGateway", "accepted"),
        ([parent("edge", Accepted="True", ResolvedRefs="True")], "True", "RouteAccepted", "edge"),
        (
            [parent("a", Accepted="True"), parent("b", Accepted="False")],
            "False",
            "RouteNotAccepted",
            "b: Accepted False (RAccepted: mAccepted)",
        ),
        (
            [parent("a", Accepted="True", ResolvedRefs="False")],
            "False",
            "RouteNotAccepted",
            "a: ResolvedRefs False",
        ),
    ],
)
def test_route_acceptance_reads_every_parent(
    parents: list[dict[str, Any]], status: str, reason: str, says: str
) -> None:
    got = route_acceptance({"status": {"parents": parents}})
    assert got[:2] == (status, reason)
    assert says in got[2]


def test_a_route_without_status_awaits_its_gateway() -> None:
    assert route_acceptance({})[0] == "Unknown"


def test_parent_refs_are_made_distinct_as_the_gateway_api_requires() -> None:
    refs = [
        {"name": "edge"},
        {"name": "edge"},
        {"name": "edge", "sectionName": "web"},
        {"name": "side", "sectionName": "a"},
        {"name": "side", "sectionName": "b"},
        {"name": "side", "sectionName": "a"},
    ]
    md_ = md(traffic={"router": "gatewayAPI", "gatewayAPI": {"parentRefs": refs}})
    got = [
        (p["name"], p.get("sectionName")) for p in build_httproute(md_, 20)["spec"]["parentRefs"]
    ]
    assert got == [("edge", None), ("side", "a"), ("side", "b")]
