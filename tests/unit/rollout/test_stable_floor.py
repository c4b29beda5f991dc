"""After a rollout under an HPA, stable is held at the pods that served as it ended, for the
HPA's scale-down window.

The HPA's window remembers its unclamped recommendations, taken while the canary shared
the load (stable looked idler than the load) or while stable sat idle during the promotion;
released at the end, it would scale stable in just as every client comes back to it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from coalmine.api.modelversion import ModelVersion
from tests.unit.rollout.sim import Sim, analysis, strategy

STEPS = strategy({"setWeight": 50}, analysis(count=1))
WINDOW = 60


def autoscaled(versions: dict[str, ModelVersion], window: int | None = WINDOW) -> Sim:
    """v1 served by 4 stable pods under an HPA (min 1, max 6), then spec moves to v2."""
    autoscaling: dict[str, Any] = {"minReplicas": 1, "maxReplicas": 6}
    if window is not None:
        autoscaling["scaleDownStabilizationSeconds"] = window
    sim = Sim(STEPS, versions, "iris-v1", spec={"autoscaling": autoscaling}, stable_pods=4)
    sim.canary_pods = (4, 4)  # what a canary asks beside 4 stable pods at 50% and at 100%
    sim.step()
    sim.step(1)
    sim.target, sim.generation = "iris-v2", 2
    return sim


def promoted(sim: Sim) -> bool:
    st = sim.status
    return st is not None and st.stable is not None and st.stable.model_version == "iris-v2"


def test_a_promotion_holds_stable_at_its_size_for_the_window(
    versions: dict[str, ModelVersion],
) -> None:
    sim = autoscaled(versions)
    assert sim.step(1).intent.stable_floor is None, "no floor before any rollout ended"
    end = sim.until(lambda _: promoted(sim))
    assert end.status.stable_floor == 4
    assert end.status.stable_floor_until == sim.now + timedelta(seconds=WINDOW)
    assert end.intent.stable_floor == 4
    assert end.requeue_after is not None
    assert end.requeue_after <= WINDOW, "the floor's end must wake the operator"
    held = sim.step(WINDOW - 1)
    assert held.intent.stable_floor == 4
    released = sim.step(1)
    assert released.intent.stable_floor is None
    assert released.status.stable_floor is None
    assert released.status.stable_floor_until is None


def test_a_rollback_holds_stable_too(versions: dict[str, ModelVersion]) -> None:
    """A rollback sends every client back to stable at once."""
    sim = autoscaled(versions)
    back = sim.until(lambda p: p.status.phase == "RolledBack", outcome="Failed")
    assert back.intent.stable_floor == 4


def test_unset_the_window_is_kubernetes_default(versions: dict[str, ModelVersion]) -> None:
    sim = autoscaled(versions, window=None)
    sim.until(lambda _: promoted(sim))
    assert sim.step(299).intent.stable_floor == 4
    assert sim.step(1).intent.stable_floor is None


def test_autoscaling_removed_releases_the_floor_at_once(
    versions: dict[str, ModelVersion],
) -> None:
    sim = autoscaled(versions)
    sim.until(lambda _: promoted(sim))
    sim.spec = {"replicas": 4}
    assert sim.step(1).intent.stable_floor is None


def test_without_an_hpa_no_floor_is_kept(versions: dict[str, ModelVersion]) -> None:
    sim = Sim(STEPS, versions, "iris-v1", spec={"replicas": 4}, stable_pods=4)
    sim.canary_pods = (4, 4)
    sim.step()
    sim.step(1)
    sim.target, sim.generation = "iris-v2", 2
    end = sim.until(lambda _: promoted(sim))
    assert end.status.stable_floor is None
    assert end.intent.stable_floor is None


def test_a_floor_without_its_end_is_released(versions: dict[str, ModelVersion]) -> None:
    """A status patched by hand to a floor with no end must not hold stable for ever."""
    sim = autoscaled(versions)
    sim.until(lambda _: promoted(sim))
    assert sim.status is not None
    sim.status = sim.status.model_copy(update={"stable_floor_until": None})
    assert sim.step(1).intent.stable_floor is None


def test_a_new_rollout_keeps_the_floor_until_its_end(versions: dict[str, ModelVersion]) -> None:
    sim = autoscaled(versions)
    end = sim.until(lambda _: promoted(sim))
    until = end.status.stable_floor_until
    sim.target, sim.generation = "iris-v3", 3
    started = sim.step(5)
    assert started.status.canary is not None
    assert started.status.canary.model_version == "iris-v3"
    assert started.status.stable_floor_until == until
    assert started.intent.stable_floor == 4
