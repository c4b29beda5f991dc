"""Autoscaling under real load (issue 15): the HPA, fed by the cluster's metrics-server,
scales the serving pods out when the load outgrows them and back in when it stops, the pods
shed what they cannot serve in time with 503 + Retry-After, and a rollout under an HPA gives
the canary the share its weight asks and promotes with stable at full size, refusing next to
nothing (zero is the aim, MAX_REFUSED_IN_ROLLOUT the bound). One story in one namespace: the
rollout starts from the pods the overload scaled out to, which saves a second scale-out.

The serving pods get a CPU limit of CPU_LIMIT, so that one pod's capacity is small and nine
times it fits on this 2-core machine; the load is open loop (a fixed arrival rate, as users
arrive), which is what shows queueing. The story measures one pod's capacity first.

Requests carry OVERLOAD_ROWS rows (ROLLOUT_ROWS in the rollout), and the client keeps
connections open and closes one every CLOSE_EVERY requests (a connection lifetime, so
kube-proxy spreads load onto new pods). Measured on one pod with this limit, that is what
lets a pod shed: a refusal costs a fraction of a served request. With one row per request
and a new connection each, a refusal costs about what serving does (the connection is most
of the work), so past capacity the wait grows in the kernel's accept queue, where no server
can see or shed it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.client import InClusterClient, latency_quantile
from tests.support.cluster import Cluster, wait_for
from tests.support.rollout import ROWS, Rollout, body, failures_after, metric, promoted_to

CPU_LIMIT = "150m"
RESOURCES = {"requests": {"cpu": CPU_LIMIT}, "limits": {"cpu": CPU_LIMIT, "memory": "512Mi"}}
SERVING = {"maxQueueMs": 200}
"""A queueing budget above the CFS period (100 ms): a pod at its CPU limit is throttled for
the rest of a period, and with the default 50 ms its queued requests were refused at a third
of its capacity (798 of 100,541 in one rollout, 0.8%)."""
AUTOSCALING = {
    "minReplicas": 1,
    "maxReplicas": 4,
    "targetCPUUtilizationPercentage": 50,
    "scaleDownStabilizationSeconds": 20,
}
MODEL = "iris-v2"  # a 50-tree forest
OVERLOAD_ROWS = 256
"""Rows per request while the load steps up: enough work per request that refusing one costs
a small part of serving it, whatever the CPU. On a host where one pod served 450-580 req/s of
32 rows (281 of 128), nine times that kept 2,048 requests in flight at a p99 of 1 s: the pods
spent their quota on refusals."""
ROLLOUT_ROWS = 32
"""Rows per request during the rollout: with 256, a few requests queued on a pod at 150m
exceed the 50 ms queueing budget, and 0.8% were refused at 1.5x (4 of 67,584 with 32)."""
CLOSE_EVERY = 20
ROLLOUT_CLOSE_EVERY = 4
"""During the rollout connections close every 4 requests: the canary's share is measured over
the few settled seconds of each weight, and with one new connection (one kube-proxy choice)
per 20 requests that was about 200 choices, whose spread (a 14% share at weight 25 in one
run) reached the 10-point bar; five times as many choices shrink it about 2.2-fold."""
STEPS = [{"setWeight": 25}, "analysis", {"setWeight": 50}, "analysis"]
"""Each analysis starts once the canary runs all the pods its weight asks (the walk waits)."""
HOLD = 30
"""Seconds of load at 1x, and at 9x once the HPA has scaled out."""
MAX_REFUSED_IN_ROLLOUT = 0.001
"""Share of the requests after the change that may be refused (503 + Retry-After). Zero is
the aim; measured here: 4 of 60,000 and 4 of 67,584, in seconds when new pods had just
joined (the 25% step, the promotion; issue 15's note)."""
ROLLOUT_LOAD = 1.5
"""The rollout's load, in one pod's capacity: more than one pod can serve, with room on the
pods the HPA scaled out to for the canary's pods starting beside them."""
P99_BOUND_MS = 1000
"""Accepted requests' p99 under overload must stay under this: without shedding, a queue
growing by several pods' worth each second would push it to the client's 10 s timeout."""


def strategy() -> dict[str, Any]:
    analysis = {
        "analysis": {
            "interval": "5s",
            "count": 2,
            "metrics": [metric("error-rate", "errorRate", 0.01)],
        }
    }
    return {"steps": [analysis if s == "analysis" else s for s in STEPS]}


@dataclass
class Scaling:
    """The stable Deployment and its HPA over time, as the test prints them."""

    cluster: Cluster
    namespace: str
    started: float = field(default_factory=time.monotonic)
    timeline: list[str] = field(default_factory=list)
    last: str = ""

    def look(self) -> tuple[int, int]:
        """(desired, ready) stable pods now; logs a line whenever they or the HPA change."""
        dep = self.cluster.get("deployment", "iris-stable", self.namespace)
        hpa = self.cluster.find("hpa", "iris", self.namespace) or {}
        desired = int(dep["spec"].get("replicas", 0))
        ready = int(dep.get("status", {}).get("readyReplicas", 0) or 0)
        metrics = hpa.get("status", {}).get("currentMetrics") or [{}]
        cpu = (metrics[0].get("resource") or {}).get("current", {}).get("averageUtilization")
        line = f"desired {desired} ready {ready} cpu {cpu if cpu is not None else '-'}%"
        if line != self.last:
            self.last = line
            self.timeline.append(f"{time.monotonic() - self.started:5.0f}s {line}")
        return desired, ready

    def until(self, what: str, done: Any, timeout: float) -> None:
        """Poll until `done(desired, ready)`; print the lines this wait added."""
        shown = len(self.timeline)
        try:
            wait_for(what, lambda: done(*self.look()), timeout=timeout, interval=2)
        finally:
            print(f"\nstable pods until {what}:\n  " + "\n  ".join(self.timeline[shown:]))


def url(namespace: str) -> str:
    return f"http://iris.{namespace}.svc.cluster.local/v2/models/iris/infer"


def bodies(rows: int = OVERLOAD_ROWS) -> list[dict[str, Any]]:
    """Each request: `rows` rows, all of one of ROWS."""
    out = []
    for row in ROWS:
        one = body(row)
        tensor = one["inputs"][0]
        tensor["shape"] = [rows, len(row)]
        tensor["data"] = row * rows
        out.append(one)
    return out


def pod_metrics_served(cluster: Cluster, namespace: str) -> bool:
    """The metrics API (metrics-server, through the aggregation layer) reports the pods."""
    raw = cluster.kubectl(
        "get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods", check=False
    )
    return raw.returncode == 0 and bool(json.loads(raw.stdout).get("items"))


def one_pod_capacity(client: InClusterClient, namespace: str, rows: int) -> float:
    """Requests per second one pod accepts when offered more than it can serve: 16 clients
    back to back for 8 s, the excess refused fast with 503."""
    client.start_load(url(namespace), bodies(rows), concurrency=16, max_requests=50_000,
                      max_seconds=8, close_every=CLOSE_EVERY)  # fmt: skip
    load = wait_for(
        "the capacity probe", lambda: (s := client.load_status())["running"] is False and s
    )
    capacity = load["ok"] / 8
    print(f"\none pod ({CPU_LIMIT} CPU), {rows} rows: {capacity:.0f} req/s; codes {load['codes']}")
    assert capacity > 5, load
    return capacity


def run_at(
    client: InClusterClient,
    namespace: str,
    rate: float,
    seconds: int,
    rows: int = OVERLOAD_ROWS,
    close_every: int = CLOSE_EVERY,
) -> None:
    client.start_load(
        url(namespace),
        bodies(rows),
        concurrency=64,
        max_requests=int(rate * seconds) + 100,
        max_seconds=seconds,
        rate=math.ceil(rate),
        close_every=close_every,
    )


def summary(name: str, load: dict[str, Any]) -> str:
    sent = max(load["sent"], 1)
    return (
        f"{name}: sent {load['sent']}, ok {load['ok']}, shed {load['failed']}"
        f" ({100 * load['failed'] / sent:.1f}%), p50 {latency_quantile(load, 0.5)} ms,"
        f" p99 {latency_quantile(load, 0.99)} ms, codes {load['codes']}"
    )


def only_shed_with_retry_after(load: dict[str, Any]) -> None:
    assert set(load["codes"]) <= {"OK", "Service Unavailable"}, load["codes"]
    assert load["failed"] == load["codes"].get("Service Unavailable", 0), load["errors"]
    assert load["retryAfter"] == load["failed"], "a 503 without Retry-After"
    assert load["skipped"] == 0, "the client had 2,048 requests in flight"


@pytest.fixture
def autoscaled(rollout: Rollout, cluster: Cluster, namespace: str) -> Rollout:
    """iris served by one pod with CPU_LIMIT under an HPA (1 to 4 pods), once the metrics API
    reports its pods."""
    if cluster.kind != "local":
        pytest.skip("needs the metrics API: the local cluster runs metrics-server, kind has none")
    rollout.spec = {
        "replicas": None, "autoscaling": AUTOSCALING, "resources": RESOURCES, "serving": SERVING
    }  # fmt: skip
    rollout.register(MODEL)
    cluster.apply(rollout.md(MODEL, strategy()), namespace=namespace)
    cluster.wait_ready("modeldeployment/iris", namespace)
    answers = lambda: rollout.client.request(url(namespace), bodies()[0])[0] == 200  # noqa: E731
    wait_for("the Service to answer", answers)
    wait_for("pod metrics", lambda: pod_metrics_served(cluster, namespace), timeout=120, interval=2)
    return rollout


def test_the_hpa_scales_out_under_overload_and_a_rollout_keeps_its_share_and_scale(
    autoscaled: Rollout, cluster: Cluster, namespace: str
) -> None:
    """The load steps from 1x one pod's capacity to 3x, where it stays until the HPA has
    scaled out to its maximum of 4 ready pods, and then to 9x for HOLD seconds. At
    ROLLOUT_LOAD on those pods the version changes; the canary at 25% and 50% is sized from
    them and gets that share of the answers, and stable has as many pods once promoted.
    Without load the HPA scales back in; removing `autoscaling` deletes it."""
    client = autoscaled.client
    scaling = Scaling(cluster, namespace)
    capacity = one_pod_capacity(client, namespace, OVERLOAD_ROWS)
    # The first probe's overload may have made the HPA add a pod: measure one pod again.
    scaling.until("one pod for the second probe", lambda d, r: d == r == 1, timeout=120)
    rollout_capacity = one_pod_capacity(client, namespace, ROLLOUT_ROWS)
    steps: list[tuple[str, dict[str, Any]]] = []

    def step(name: str, factor: int, until: str, done: Any, timeout: float, hold: int) -> None:
        run_at(client, namespace, factor * capacity, seconds=int(timeout) + hold + 30)
        scaling.until(until, done, timeout=timeout)
        reached = len(client.load_status()["seconds"])
        held = lambda: len(client.load_status()["seconds"]) >= reached + hold  # noqa: E731
        wait_for(f"{hold} s more at {name}", held, timeout=hold + 30)
        load = client.stop_load()
        steps.append((name, load))
        print(summary(name, load))

    step("1x", 1, "1 pod at 1x", lambda d, r: r >= 1, timeout=10, hold=HOLD)
    step("3x", 3, "the HPA to reach 4 ready pods", lambda d, r: r >= 4, timeout=300, hold=0)
    step("9x", 9, "4 ready pods at 9x", lambda d, r: r >= 4, timeout=10, hold=HOLD)

    for _, load in steps:
        only_shed_with_retry_after(load)
    for name, load in (steps[0], steps[2]):  # 3x ran mostly on fewer pods: reported only
        assert latency_quantile(load, 0.99) <= P99_BOUND_MS, summary(name, load)
    assert steps[2][1]["failed"] > 0, "9x one pod's capacity was never refused: no overload"

    a_rollout_keeps_the_canary_share_and_promotes(autoscaled, cluster, namespace, rollout_capacity)

    scaling.until("the HPA to scale back in to 1 pod", lambda d, r: d == 1, timeout=240)
    autoscaled.spec = {"replicas": 2, "resources": RESOURCES, "serving": SERVING}
    cluster.apply(autoscaled.md("iris-v2b", strategy()), namespace=namespace)
    wait_for("the HPA to be deleted", lambda: cluster.find("hpa", "iris", namespace) is None)
    scaling.until("the operator to own the count again", lambda d, r: d == r == 2, timeout=120)


def a_rollout_keeps_the_canary_share_and_promotes(
    autoscaled: Rollout, cluster: Cluster, namespace: str, capacity: float
) -> None:
    """The rollout half of the story, from the pods the overload left (3 or 4 ready), at
    ROLLOUT_LOAD times `capacity`, one pod's for ROLLOUT_ROWS."""
    client = autoscaled.client
    copy = json.loads(json.dumps(autoscaled.models[MODEL]))
    copy["metadata"]["name"], copy["spec"]["version"] = "iris-v2b", "v2b"
    autoscaled.models["iris-v2b"] = copy
    autoscaled.register("iris-v2b")  # the same artifact: the same cost per request

    scaling = Scaling(cluster, namespace)
    run_at(client, namespace, ROLLOUT_LOAD * capacity, seconds=600, rows=ROLLOUT_ROWS,
           close_every=ROLLOUT_CLOSE_EVERY)  # fmt: skip
    scaling.until("3 or more ready pods at the rollout's load", lambda d, r: d == r >= 3,
                  timeout=240)  # fmt: skip
    started = autoscaled.load_second()

    weights: dict[int, tuple[int, bool]] = {}
    shared_with: list[int] = []
    """Stable pods when the canary first took a share: the HPA's floor from then on (while
    the canary warms at weight 0 the HPA may still scale stable to the rollout's load)."""
    promoted_with: list[int] = []
    held: list[int] = []
    """status.stableFloor as the rollout ended: the HPA's floor for its scale-down window."""

    def note(st: dict[str, Any]) -> None:
        canary = st.get("canary") or {}
        settled = canary.get("readyReplicas") == canary.get("replicas")
        weight = int(canary.get("weight", 0))
        weights[int(autoscaled.load_second())] = (weight, settled)
        desired, _ = scaling.look()
        if 0 < weight < 100 and not shared_with:
            shared_with.append(desired)
        if promoted_to("iris-v2b")(st) and not promoted_with:
            promoted_with.append(desired)
            held.append(st.get("stableFloor") or 0)

    out = autoscaled.change("iris-v2b", strategy(), promoted_to("iris-v2b"), during=note,
                            timeout=480)  # fmt: skip
    print("\nstable pods during the rollout:\n  " + "\n  ".join(scaling.timeline))
    load = out.load
    print(summary(f"{ROLLOUT_LOAD}x during the rollout", load))
    for second, (weight, settled) in sorted(weights.items()):
        if second < len(load["seconds"]) and load["seconds"][second]["failed"]:
            print(f"  second {second} (weight {weight}, canary settled {settled}):"
                  f" {load['seconds'][second]['failed']} failed")  # fmt: skip
    shares = {}
    for weight in (25, 50):
        seconds = sorted(s for s, (w, settled) in weights.items() if w == weight and settled)
        counted = [load["seconds"][s] for s in seconds[3:] if s < len(load["seconds"])]
        ok = sum(c["ok"] for c in counted)
        shares[weight] = 100 * sum(c["versions"].get("v2b", 0) for c in counted) / max(ok, 1)
        print(f"weight {weight}: canary answered {shares[weight]:.0f}% of {ok} requests")
        assert ok > 0, f"no settled second at weight {weight}: {weights}"
    only_shed_with_retry_after(load)
    after = failures_after(load, started)
    answered = sum(s["ok"] + s["failed"] for i, s in enumerate(load["seconds"]) if i > started)
    print(f"after the change: {after} of {answered} requests refused")
    assert after <= MAX_REFUSED_IN_ROLLOUT * answered, load["errors"]
    for weight, share in shares.items():
        assert abs(share - weight) <= 10, (weight, share)
    assert out.md["status"]["stable"]["modelVersion"] == "iris-v2b"
    print(f"stable pods: {shared_with} at the first share, {promoted_with} when promoted")
    assert promoted_with[0] >= shared_with[0], "the promotion left stable under-scaled"
    print(f"held after it (status.stableFloor): {held}")
    assert held[0] >= shared_with[0], "the HPA's floor went with the rollout"
