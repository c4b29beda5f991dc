"""Summing the stable pods' mirror reports for `coalmine report`."""

from __future__ import annotations

from typing import Any

from coalmine.cli.shadow import MAX_EXAMPLES, merge


def pod(
    canary: str, compared: int, agreeing: int, confusion: list[list[Any]], times: list[float]
) -> dict[str, Any]:
    return {
        "canaries": {
            canary: {"compared": compared, "agreeing": agreeing, "confusion": confusion},
            "older": {"compared": 999, "agreeing": 0, "confusion": [["0", "9", 999]]},
        },
        "examples": [
            {"time": t, "canary": canary, "inputs": [t], "stable": 0, "canary_answer": 1}
            for t in times
        ]
        + [{"time": 1e12, "canary": "older", "inputs": [], "stable": 0, "canary_answer": 9}],
    }


def test_the_pods_are_summed_for_the_rollouts_canary_only() -> None:
    view = merge(
        "iris-v3",
        [
            pod("iris-v3", 100, 10, [["0", "1", 60], ["1", "1", 10]], [1.0, 3.0]),
            pod("iris-v3", 50, 0, [["0", "1", 50]], [2.0]),
        ],
        [],
    )
    assert view is not None
    assert (view.pods, view.compared, view.agreeing) == (2, 150, 10)
    assert view.confusion == {("0", "1"): 110, ("1", "1"): 10}
    assert [e["time"] for e in view.examples] == [3.0, 2.0, 1.0]  # newest first, theirs only


def test_examples_are_bounded() -> None:
    view = merge("c", [pod("c", 1, 0, [], [float(t) for t in range(30)])], [])
    assert view is not None
    assert len(view.examples) == MAX_EXAMPLES
    assert view.examples[0]["time"] == 29.0


def test_a_rollout_without_shadow_steps_has_no_view_unless_a_pod_went_unread() -> None:
    assert merge("iris-v2", [pod("iris-v3", 5, 5, [], [])], []) is None
    view = merge("iris-v2", [], ["iris-stable-x: Forbidden"])
    assert view is not None
    assert view.unread == ("iris-stable-x: Forbidden",)
