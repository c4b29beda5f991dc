"""The replica-ratio router: selectors at the ends, pod counts in between."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coalmine.api import ModelDeployment
from coalmine.traffic.kubernetes import KubernetesRouter, canary_replicas_for, route
from tests.integration.test_admission import model_deployment


def md(**spec: Any) -> ModelDeployment:
    doc = model_deployment("iris")
    doc["metadata"] |= {"namespace": "ml", "uid": "uid-1"}
    doc["spec"].update(spec)
    doc["spec"] = {k: v for k, v in doc["spec"].items() if v is not None}
    return ModelDeployment.model_validate(doc)


def main_selector(plan_objects: tuple[dict[str, Any], ...]) -> dict[str, str]:
    service = next(o for o in plan_objects if o["metadata"]["name"] == "iris")
    selector: dict[str, str] = service["spec"]["selector"]
    return selector


def test_no_canary_sends_everything_to_stable() -> None:
    plan = route(md(replicas=3), canary_running=False, weight=0, stable_pods=None, canary_ready=0)
    assert (plan.stable_replicas, plan.canary_replicas, plan.canary_share) == (3, 0, 0)
    assert main_selector(plan.objects)["coalmine.dev/variant"] == "stable"


def service_names(plan_objects: tuple[dict[str, Any], ...]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in plan_objects if o["kind"] == "Service")


@pytest.mark.parametrize("weight", [0, 25, 100])
def test_only_the_services_something_calls_are_written(weight: int) -> None:
    """The client Service always; the canary's while a canary runs (shadow copies go there);
    never a stable one, which only the gatewayAPI router's backends need."""
    at_rest = route(md(replicas=3), canary_running=False, weight=0, stable_pods=3, canary_ready=0)
    assert service_names(at_rest.objects) == ["iris"]
    rolling = route(md(replicas=3), canary_running=True, weight=weight, stable_pods=3,
                    canary_ready=3)  # fmt: skip
    assert service_names(rolling.objects) == ["iris", "iris-canary"]


def test_warm_canary_at_weight_zero_takes_no_traffic() -> None:
    plan = route(md(replicas=3), canary_running=True, weight=0, stable_pods=None, canary_ready=0)
    assert plan.canary_replicas == 1
    assert plan.canary_share == 0
    assert main_selector(plan.objects)["coalmine.dev/variant"] == "stable"


def test_full_weight_selects_only_the_canary() -> None:
    plan = route(md(replicas=2), canary_running=True, weight=100, stable_pods=None, canary_ready=2)
    assert plan.canary_replicas == 2
    assert plan.canary_share == 100
    assert main_selector(plan.objects)["coalmine.dev/variant"] == "canary"


def test_partial_weight_selects_both_and_reports_the_real_share() -> None:
    plan = route(md(replicas=1), canary_running=True, weight=20, stable_pods=None, canary_ready=0)
    assert "coalmine.dev/variant" not in main_selector(plan.objects)
    assert plan.canary_replicas == 1
    assert plan.canary_share == 50  # one pod each: honest, not the asked 20


def test_autoscaling_leaves_stable_count_to_the_hpa() -> None:
    auto = md(replicas=None, autoscaling={"minReplicas": 4, "maxReplicas": 8})
    plan = route(auto, canary_running=True, weight=20, stable_pods=None, canary_ready=0)
    assert plan.stable_replicas is None
    assert plan.canary_replicas == 1
    assert any(o["kind"] == "HorizontalPodAutoscaler" for o in plan.objects)


def hpa_floor(objects: tuple[dict[str, Any], ...]) -> int:
    hpa = next(o for o in objects if o["kind"] == "HorizontalPodAutoscaler")
    floor: int = hpa["spec"]["minReplicas"]
    return floor


@pytest.mark.parametrize(("stable_pods", "weight", "canary"), [(6, 25, 2), (6, 50, 6), (3, 25, 1)])
def test_under_an_hpa_the_canary_is_sized_from_the_stable_pods_it_set(
    stable_pods: int, weight: int, canary: int
) -> None:
    auto = md(replicas=None, autoscaling={"minReplicas": 1, "maxReplicas": 8})
    plan = route(auto, canary_running=True, weight=weight, stable_pods=stable_pods, canary_ready=0)
    assert plan.canary_replicas == canary
    assert plan.canary_share == round(100 * canary / (stable_pods + canary))


@pytest.mark.parametrize("weight", [10, 25, 50, 90])
def test_while_the_canary_takes_a_share_the_hpa_cannot_shrink_stable(weight: int) -> None:
    """Stable looks idler than the load is while the canary takes its share: scaled in, it
    would shrink the canary sized from it and take a rollback's whole load on too few pods."""
    auto = md(replicas=None, autoscaling={"minReplicas": 1, "maxReplicas": 8})
    plan = route(auto, canary_running=True, weight=weight, stable_pods=4, canary_ready=0)
    assert hpa_floor(plan.objects) == 4
    warming = route(auto, canary_running=True, weight=0, stable_pods=4, canary_ready=1)
    assert hpa_floor(warming.objects) == 1  # stable takes all the traffic: its own load
    rolled_back = route(auto, canary_running=False, weight=0, stable_pods=4, canary_ready=0)
    assert hpa_floor(rolled_back.objects) == 1


@pytest.mark.parametrize(("stable_pods", "base"), [(None, 2), (1, 2), (5, 5), (12, 8)])
def test_the_stable_count_is_read_within_the_hpa_bounds(stable_pods: int | None, base: int) -> None:
    auto = md(replicas=None, autoscaling={"minReplicas": 2, "maxReplicas": 8})
    plan = route(auto, canary_running=True, weight=50, stable_pods=stable_pods, canary_ready=0)
    assert plan.canary_replicas == base


def test_at_full_weight_both_serve_until_the_canary_has_all_its_pods_ready() -> None:
    starting = route(md(replicas=4), canary_running=True, weight=100, stable_pods=4,
                     canary_ready=1)  # fmt: skip
    assert starting.canary_replicas == 4
    assert "coalmine.dev/variant" not in main_selector(starting.objects)
    assert starting.canary_share == 50
    ready = route(md(replicas=4), canary_running=True, weight=100, stable_pods=4, canary_ready=4)
    assert main_selector(ready.objects)["coalmine.dev/variant"] == "canary"
    assert ready.canary_share == 100


def test_a_promotion_lands_on_as_many_pods_as_stable_has_and_holds_the_hpa_there() -> None:
    """At weight 100 the stable pods idle while they take the new version: the HPA's floor is
    the serving canary's count, so they cannot shrink under the load coming back to them."""
    auto = md(replicas=None, autoscaling={"minReplicas": 1, "maxReplicas": 8})
    plan = route(auto, canary_running=True, weight=100, stable_pods=5, canary_ready=5)
    assert plan.canary_replicas == 5
    assert hpa_floor(plan.objects) == 5
    after = route(auto, canary_running=False, weight=0, stable_pods=5, canary_ready=0)
    assert hpa_floor(after.objects) == 1


@pytest.mark.parametrize(("stable", "weight", "expected"), [(0, 50, 0), (4, 0, 0), (4, 100, 4)])
def test_canary_replicas_edges(stable: int, weight: int, expected: int) -> None:
    assert canary_replicas_for(stable, weight) == expected


@given(st.integers(1, 50), st.integers(1, 99))
def test_canary_share_is_the_closest_reachable_to_the_weight(stable: int, weight: int) -> None:
    canary = canary_replicas_for(stable, weight)
    assert canary >= 1
    share = canary / (stable + canary)
    for other in (canary - 1, canary + 1):
        if other >= 1:
            assert abs(share - weight / 100) <= abs(other / (stable + other) - weight / 100) + 1e-9


@pytest.mark.parametrize(("mirror", "pods"), [(10, 1), (50, 2), (100, 4)])
def test_a_shadow_step_sizes_the_canary_for_its_copies_but_keeps_clients_on_stable(
    mirror: int, pods: int
) -> None:
    plan = route(
        md(replicas=4), canary_running=True, weight=0, stable_pods=4, canary_ready=0, mirror=mirror
    )
    assert plan.canary_replicas == pods
    assert plan.canary_share == 0
    assert main_selector(plan.objects)["coalmine.dev/variant"] == "stable"
    assert KubernetesRouter().canary_size(md(replicas=4), 0, 4, mirror) == pods


def test_after_a_rollout_the_held_floor_keeps_stable_from_shrinking() -> None:
    """Intent.stable_floor (status.stableFloor) holds the HPA's floor once the rollout ended,
    and the higher floor wins while a new rollout holds one too."""
    auto = md(replicas=None, autoscaling={"minReplicas": 1, "maxReplicas": 8})
    ended = route(auto, canary_running=False, weight=0, stable_pods=5, canary_ready=0,
                  stable_floor=5)  # fmt: skip
    assert hpa_floor(ended.objects) == 5
    again = route(auto, canary_running=True, weight=50, stable_pods=6, canary_ready=0,
                  stable_floor=5)  # fmt: skip
    assert hpa_floor(again.objects) == 6
    capped = route(auto, canary_running=False, weight=0, stable_pods=5, canary_ready=0,
                   stable_floor=12)  # fmt: skip
    assert hpa_floor(capped.objects) == 8  # never above maxReplicas
