"""Shadow rollouts (issue 13): the canary answers copies of live requests that the stable
pods send it, and only the comparison of answers decides. No client is ever answered by
the canary, so every response's model_version is stable's.

One ModelDeployment lives through three shadow-only rollouts under balanced traffic, on
which the distribution of predictions cannot tell a label-permuting model from a good one:
- iris-v3 (every class renamed) is rolled back on `agreement`;
- iris-errors, answering 500 to every copied batch with an unseen row, is rolled back on
  `errorRate`, with zero failed client requests;
- iris-v2 (a better forest, agreeing with v1 on this traffic) is promoted.
A regressor answering a small constant more than stable is rolled back on `predictionDelta`.

Each load may run for the whole rollout (LOAD_REQUESTS, bounded by the client's 480 s):
the stable pods see a mirror step's ConfigMap when the kubelet next syncs them, up to about
a minute, and a load of 100,000 requests (the default) was over by then in one run, so no
copy was ever made and the rollout timed out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sklearn.datasets import load_diabetes

from tests.support.rollout import (
    BAD_ROW,
    INTERVAL,
    ROWS,
    Rollout,
    coalmine,
    metric,
    promoted_to,
    report,
    rolled_back,
    strategy,
)

AGREEMENT: dict[str, Any] = {
    "name": "agreement",
    "provider": "builtin",
    "builtin": {"metric": "agreement"},
    "threshold": {"min": 0.95},
    "minSampleCount": 50,
}
SHIFT_BAR = 0.2
LOAD_REQUESTS = 800_000
SHADOW = strategy(
    [
        {"mirror": 100},
        {
            "analysis": {
                "interval": INTERVAL,
                "count": 2,
                "metrics": [
                    AGREEMENT,
                    metric("error-rate", "errorRate", 0.05),
                    metric("prediction-shift", "predictionShift", SHIFT_BAR),
                ],
            }
        },
    ]
)
# The timed window before a shadow step's copies arrive (the kubelet brings the new
# ConfigMap within its sync period) is Inconclusive, not failed: the deadline covers it.
SHADOW["progressDeadlineSeconds"] = 300


def figures(md: dict[str, Any]) -> dict[str, float]:
    analysis = md["status"]["lastAnalysis"]
    return {m["name"]: m["value"] for m in analysis["metrics"] if m.get("value") is not None}


def test_shadow_rollouts_decide_on_answers_and_never_answer_a_client(
    rollout: Rollout, tmp_path: Path
) -> None:
    rollout.register("iris-v1", "iris-v3", "iris-errors", "iris-v2")

    rollout.serve("iris-v1", SHADOW, ROWS, LOAD_REQUESTS)
    out = rollout.change("iris-v3", SHADOW, rolled_back)
    report("shadow: permuted labels", out)
    assert "agreement" in out.md["status"]["message"], out.md["status"]["message"]
    seen = figures(out.md)
    assert seen["agreement"] < 0.05, seen
    # What the distribution of predictions says of the same traffic: nothing to worry about.
    assert seen["prediction-shift"] < SHIFT_BAR, seen
    assert out.load["failed"] == 0, out.load["errors"]
    assert set(out.load["versions"]) == {"v1"}, out.load["versions"]
    # The report reads the comparison from the stable pods: v3 renames every class.
    coalmine("report", "iris", "-n", rollout.namespace, "--out", str(tmp_path), "--no-png",
             cluster=rollout.cluster)  # fmt: skip
    page = (tmp_path / "iris-rev2.html").read_text()
    assert "Shadow comparison with stable" in page
    assert "the canary agreed on 0 (0.0%)" in page
    assert "inputs (disagreeing rows, newest first)" in page

    rollout.serve("iris-v1", SHADOW, [*ROWS, BAD_ROW], LOAD_REQUESTS)
    out = rollout.change("iris-errors", SHADOW, rolled_back)
    report("shadow: 500 on copies", out)
    assert "error-rate" in out.md["status"]["message"], out.md["status"]["message"]
    assert out.load["failed"] == 0, out.load["errors"]
    assert set(out.load["versions"]) == {"v1"}, out.load["versions"]

    rollout.serve("iris-v1", SHADOW, ROWS, LOAD_REQUESTS)
    out = rollout.change("iris-v2", SHADOW, promoted_to("iris-v2"))
    report("shadow: good", out)
    assert out.load["failed"] == 0, out.load["errors"]
    promoted = out.md["status"]["history"][-1]
    assert (promoted["outcome"], promoted["modelVersion"]) == ("Promoted", "iris-v2")
    assert figures(out.md)["agreement"] >= 0.95


def test_a_regressor_off_by_a_small_constant_is_rolled_back_on_prediction_delta(
    rollout: Rollout,
) -> None:
    rollout.name = "diabetes"
    rollout.register("diabetes-v1", "diabetes-offset")
    rows = [[round(v, 5) for v in row] for row in load_diabetes().data[:16].tolist()]
    delta = {
        "name": "prediction-delta",
        "provider": "builtin",
        "builtin": {"metric": "predictionDelta"},
        "threshold": {"max": 1.0},
        "minSampleCount": 50,
    }
    shift = metric("prediction-shift", "predictionShift", SHIFT_BAR)
    analysis = {"interval": INTERVAL, "count": 2, "metrics": [delta, shift]}
    shadow = strategy([{"mirror": 100}, {"analysis": analysis}])
    shadow["progressDeadlineSeconds"] = 300
    rollout.serve("diabetes-v1", shadow, rows, LOAD_REQUESTS)
    out = rollout.change("diabetes-offset", shadow, rolled_back)
    report("shadow: regressor off by 5", out)
    assert "prediction-delta" in out.md["status"]["message"], out.md["status"]["message"]
    seen = figures(out.md)
    # Every |delta| is 5: the p95 read from the histogram's 1-2-5 buckets is near it.
    assert 2 < seen["prediction-delta"] <= 10, seen
    assert seen["prediction-shift"] < SHIFT_BAR, seen
    assert out.load["failed"] == 0, out.load["errors"]
    assert set(out.load["versions"]) == {"v1"}, out.load["versions"]
