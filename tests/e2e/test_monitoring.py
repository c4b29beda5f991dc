"""Day 2 (issue 14): a promoted model stays watched, with no rollout running.

iris-v1 serves under in-cluster load while `spec.monitoring` checks it every 10 s:
- murder hornet: the traffic turns to inputs far outside the training ranges. ModelHealthy
  turns False on outOfDistribution within two intervals, with an Event, and recovers
  once the traffic is back;
- drift: one feature's values crowd into one corner of their training range (nothing out
  of range). PSI breaches and the condition names that feature;
- decay: the application posts true labels from a concept that changed. Accuracy falls
  below its floor, the condition names accuracy, and the webhook, a pod in the cluster,
  receives one call for it.
A canary whose answers are wrong on labelled traffic, but whose predictions are spread as
stable's are, is rolled back on `accuracy`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sklearn.datasets import load_iris

from tests.support.client import InClusterClient
from tests.support.cluster import wait_for
from tests.support.rollout import (
    Rollout,
    metric,
    promoted_to,
    report,
    rolled_back,
    strategy,
)

INTERVAL = 10
X, Y = load_iris(return_X_y=True)
ROWS = [[round(v, 2) for v in row] for row in X.tolist()]
"""The 150 iris flowers, one of each: traffic shaped like the training data."""
TRUTHS = [int(y) for y in Y]
HORNETS = [[r[0] * 4, r[1], r[2] * 10, r[3] * 10] for r in ROWS]
"""Far outside every flower the model saw: what no one planned for."""
CROWDED = [[r[0], 4.1, r[2], r[3]] for r in ROWS]
"""Every sepal width near the top of its training range: drift without any outlier."""
DECAYED = [(y + 1) % 3 for y in TRUTHS]
"""What the world now calls each flower: the concept moved, the inputs did not."""
FOR_LOAD = 2_000_000  # bounded by the client's 480 s per run; each phase restarts it


def check(name: str, metric_name: str, samples: int, **threshold: float) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "builtin",
        "builtin": {"metric": metric_name},
        "threshold": threshold,
        "minSampleCount": samples,
        "keepFiringFor": f"{INTERVAL}s",
    }


def healthy(st: dict[str, Any]) -> dict[str, Any]:
    """The ModelHealthy condition ({} before the first)."""
    return next((c for c in st.get("conditions", []) if c["type"] == "ModelHealthy"), {})


def wait_health(rollout: Rollout, status: str, timeout: float = 120) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        condition = healthy(rollout.status())
        return condition if condition.get("status") == status else None

    found: dict[str, Any] = wait_for(f"ModelHealthy {status}", reached, timeout, interval=0.5)
    return found


def events(rollout: Rollout, reason: str) -> list[str]:
    out = rollout.cluster.kubectl(
        "-n", rollout.namespace, "get", "events", "-o", "json", "--field-selector",
        f"reason={reason},involvedObject.name={rollout.name}",
    ).stdout  # fmt: skip
    return [e["message"] for e in json.loads(out)["items"]]


def test_a_serving_model_is_watched_for_the_unseen_drift_and_decay(
    rollout: Rollout, client: InClusterClient
) -> None:
    rollout.register("iris-v1")
    rollout.spec = {
        "monitoring": {
            "interval": f"{INTERVAL}s",
            "checks": [
                check("ood", "outOfDistribution", 50, max=0.05),
                check("drift", "inputDrift", 100, max=0.5),
                check("accuracy", "accuracy", 50, min=0.7),
            ],
            "webhook": {"url": client.hooks_url},
        }
    }
    rollout.serve("iris-v1", strategy(), ROWS, FOR_LOAD, truths=TRUTHS)
    calm = wait_health(rollout, "True")
    print(f"\ncalm: {calm['message']}")

    started = time.monotonic()
    rollout.load(HORNETS, FOR_LOAD)
    hornet = wait_health(rollout, "False")
    took = time.monotonic() - started
    print(f"murder hornet: False after {took:.1f} s: {hornet['reason']}: {hornet['message']}")
    assert hornet["reason"] == "OutOfDistribution", hornet
    assert hornet["message"].startswith("stable v1: ood "), hornet
    assert "> max 0.05" in hornet["message"], hornet
    assert took <= 2 * INTERVAL + 5, f"{took:.1f} s is more than two intervals"
    assert any("ood" in m for m in events(rollout, "CheckFiring"))
    rollout.load(ROWS, FOR_LOAD, truths=TRUTHS)
    back = wait_health(rollout, "True")
    print(f"recovered after {time.monotonic() - started:.1f} s: {back['message']}")
    assert any("ood" in m for m in events(rollout, "CheckResolved"))

    rollout.load(CROWDED, FOR_LOAD)
    drift = wait_health(rollout, "False")
    print(f"drift: {drift['reason']}: {drift['message']}")
    assert drift["reason"] == "InputDrift", drift
    assert "(feature sepal_width) > max 0.50" in drift["message"], drift
    assert "ood" not in drift["message"], drift
    rollout.load(ROWS, FOR_LOAD, truths=TRUTHS)
    wait_health(rollout, "True")

    assert [c for c in client.hooks() if c["check"] == "accuracy"] == []
    rollout.load(ROWS, FOR_LOAD, truths=DECAYED)
    decay = wait_health(rollout, "False")
    print(f"decay: {decay['reason']}: {decay['message']}")
    assert decay["reason"] == "Accuracy", decay
    assert "accuracy" in decay["message"], decay
    wait_for(
        "the webhook call for accuracy",
        lambda: [c for c in client.hooks() if c["check"] == "accuracy"],
    )
    # One firing, one call: two more measurements later there is still only one.
    for _ in range(2):
        measured = rollout.status()["monitoring"]["measuredAt"]
        wait_for(
            "the next measurement",
            lambda m=measured: rollout.status()["monitoring"]["measuredAt"] != m,
            timeout=3 * INTERVAL,
        )
    assert healthy(rollout.status())["status"] == "False"
    calls = [c for c in client.hooks() if c["check"] == "accuracy"]
    assert len(calls) == 1, calls
    call = calls[0]
    print(f"webhook: {call}")
    assert (call["deployment"], call["variant"], call["version"]) == ("iris", "stable", "v1")
    assert call["value"] < 0.7, call
    load = client.stop_load()
    assert load["failed"] == 0, load["errors"]
    assert load["feedback"].get("OK", 0) > 0, load["feedback"]


def test_a_canary_wrong_on_labelled_traffic_is_rolled_back_on_accuracy(
    rollout: Rollout,
) -> None:
    rollout.register("iris-v1", "iris-v3")
    accuracy = {
        "name": "accuracy",
        "provider": "builtin",
        "builtin": {"metric": "accuracy"},
        "threshold": {"min": 0.8},
        "minSampleCount": 30,
    }
    shift = metric("prediction-shift", "predictionShift", 0.2)
    labelled = strategy(
        [
            {"setWeight": 50},
            {"analysis": {"interval": "5s", "count": 3, "metrics": [accuracy, shift]}},
        ]
    )
    rollout.serve("iris-v1", labelled, ROWS, FOR_LOAD, truths=TRUTHS)
    out = rollout.change("iris-v3", labelled, rolled_back)
    report("labelled: permuted labels", out)
    message = out.md["status"]["message"]
    assert "accuracy" in message, message
    figures = {m["name"]: m for m in out.md["status"]["lastAnalysis"]["metrics"]}
    # What the distribution of predictions says of balanced traffic: nothing to worry about.
    assert figures["prediction-shift"]["value"] < 0.2, figures
    assert figures["accuracy"]["value"] < 0.2 < figures["accuracy"]["stableValue"], figures
    assert out.load["failed"] == 0, out.load["errors"]
    assert promoted_to("iris-v3")(out.md["status"]) is False
