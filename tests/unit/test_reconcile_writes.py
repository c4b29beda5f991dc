"""What one reconcile writes, and in what order, against a recording fake of the kube layer:
traffic moves before pods go, a canary has its pod before the Service sends it anyone, and a
reconcile with nothing to change writes no status and posts no event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest

from coalmine.api.counters import VariantCounters
from coalmine.api.deployment import Traffic
from coalmine.monitoring.decide import Notification
from coalmine.reconcile import reconcile_deployment
from coalmine.traffic import ROUTERS
from tests.unit.recording_kube import RecordingKube, Write

NS = "ml"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
STRATEGY = {
    "steps": [{"setWeight": 50}, {"pause": {}}],
    "abortScaleDownDelaySeconds": 0,
    "scaleDownDelaySeconds": 0,
}


OOD_EVERY_10S: dict[str, Any] = {
    "interval": "10s",
    "checks": [
        {
            "name": "ood",
            "provider": "builtin",
            "builtin": {"metric": "outOfDistribution"},
            "threshold": {"max": 0.05},
        }
    ],
}
"""One day-2 check: out-of-range inputs above 5%, measured every 10 s."""


def model_version(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "coalmine.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"},
        "spec": {
            "model": "iris",
            "version": name.removeprefix("iris-"),
            "uri": f"s3://models/{name}.skops",
            "sha256": "0" * 64,
            "format": "skops",
        },
        "status": {"phase": "Validated"},
    }


class World:
    """One ModelDeployment (2 replicas) served against the fake, with a clock."""

    def __init__(self) -> None:
        self.kube = RecordingKube()
        self.now = T0
        for name in ("iris-v1", "iris-v2"):
            self.kube.put(model_version(name))
        self.kube.put(
            {
                "apiVersion": "coalmine.dev/v1alpha1",
                "kind": "ModelDeployment",
                "metadata": {"name": "iris", "namespace": NS, "uid": "uid-md", "generation": 1},
                "spec": {"modelVersion": "iris-v1", "replicas": 2, "strategy": STRATEGY},
            }
        )

    @property
    def md(self) -> dict[str, Any]:
        found = self.kube.get("ModelDeployment", NS, "iris")
        assert found is not None
        return found

    def edit(self, **spec: Any) -> None:
        md = self.md
        md["spec"].update(spec)
        md["metadata"]["generation"] += 1
        self.kube.put(md)

    def annotate(self, key: str, value: str) -> None:
        md = self.md
        md["metadata"].setdefault("annotations", {})[key] = value
        self.kube.put(md)

    def reconcile(self, seconds: float = 1) -> list[Write]:
        """One reconcile, `seconds` after the last; the writes it made."""
        self.now += timedelta(seconds=seconds)
        start = len(self.kube.writes)
        reconcile_deployment(self.kube, NS, "iris", clock=lambda: self.now)
        return self.kube.writes[start:]

    def until(self, phase: str, limit: int = 10) -> None:
        for _ in range(limit):
            self.reconcile()
            if self.md.get("status", {}).get("phase") == phase:
                return
        pytest.fail(f"never {phase}: {self.md.get('status')}")


def index(writes: list[Write], kind: str, name: str) -> int:
    return next(i for i, w in enumerate(writes) if w.kind == kind and w.name == name)


def at_the_pause() -> World:
    world = World()
    world.until("Healthy")
    world.edit(modelVersion="iris-v2")
    world.until("Paused")
    status = world.md["status"]
    assert status["canary"]["weight"] == 50
    return world


def test_a_rollback_moves_traffic_to_stable_before_the_canary_scales_down() -> None:
    world = at_the_pause()
    world.annotate("coalmine.dev/abort", "t1")
    writes = world.reconcile()
    service = index(writes, "Service", "iris")
    assert writes[service].selector()["coalmine.dev/variant"] == "stable"
    canary = index(writes, "Deployment", "iris-canary")
    assert writes[canary].replicas() == 0
    assert service < canary
    assert world.md["status"]["phase"] == "RolledBack"


def test_a_new_canary_takes_no_traffic_in_the_reconcile_that_creates_it() -> None:
    world = World()
    world.until("Healthy")
    world.edit(modelVersion="iris-v2")
    writes = world.reconcile()
    created = index(writes, "Deployment", "iris-canary")
    assert writes[created].replicas() == 1
    # The Service already selects stable alone, so it is not even written.
    assert [w for w in writes if (w.kind, w.name) == ("Service", "iris")] == []
    service = world.kube.get("Service", NS, "iris")
    assert service is not None
    assert service["spec"]["selector"]["coalmine.dev/variant"] == "stable"


def test_a_weight_moves_traffic_before_the_canary_grows_to_its_share() -> None:
    """At 50% beside 2 stable pods the canary runs 2; the Service selects both variants in
    the same reconcile, before the Deployment grows, so a rollback's order holds both ways."""
    world = World()
    world.until("Healthy")
    world.edit(modelVersion="iris-v2")
    world.reconcile()  # the canary Deployment, one pod
    writes = world.reconcile()  # ready: the weight step
    service = index(writes, "Service", "iris")
    assert "coalmine.dev/variant" not in writes[service].selector()
    canary = index(writes, "Deployment", "iris-canary")
    assert writes[canary].replicas() == 2
    assert service < canary


def test_a_reconcile_with_nothing_to_change_writes_nothing() -> None:
    world = World()
    world.until("Healthy")
    world.reconcile()
    assert world.reconcile(30) == []


def test_a_child_someone_else_changed_is_applied_again() -> None:
    world = World()
    world.until("Healthy")
    scaled = world.kube.get("Deployment", NS, "iris-stable")
    assert scaled is not None
    scaled["spec"]["replicas"] = 5  # kubectl scale: a field the operator owns
    world.kube.put(scaled)
    writes = world.reconcile(30)
    applied = [(w.kind, w.name, w.replicas()) for w in writes if w.verb == "apply"]
    assert applied == [("Deployment", "iris-stable", 2)]


def test_a_router_that_takes_over_removes_what_only_the_old_one_wrote() -> None:
    world = World()
    world.edit(traffic={"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "edge"}]}})
    world.until("Healthy")
    assert world.kube.get("HTTPRoute", NS, "iris") is not None
    world.edit(traffic={"router": "kubernetes"})
    writes = world.reconcile()
    assert [(w.verb, w.kind, w.name) for w in writes if w.verb == "delete"] == [
        ("delete", "HTTPRoute", "iris")
    ]
    assert world.kube.get("HTTPRoute", NS, "iris") is None
    assert world.md["status"]["router"] == "kubernetes"


def test_a_gateway_mirror_step_leaves_the_copying_to_the_stable_pods() -> None:
    """The mirror file tells the stable pods to copy; the route carries no mirror of its own
    (a Gateway's would discard the canary's answers and double its copies)."""
    world = World()
    world.edit(
        traffic={"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "edge"}]}},
        strategy={**STRATEGY, "steps": [{"mirror": 50}, {"pause": {}}]},
    )
    world.until("Healthy")
    world.edit(modelVersion="iris-v2")
    start = len(world.kube.writes)
    world.until("Paused")
    writes = world.kube.writes[start:]
    shares = [
        json.loads(w.body["data"]["mirror.json"])["percent"]
        for w in writes
        if w.kind == "ConfigMap"
    ]
    assert 50 in shares
    routes = [w.body for w in writes if w.kind == "HTTPRoute"]
    assert routes
    assert all("filters" not in rule for r in routes for rule in r["spec"]["rules"])
    warnings = [
        w.body["reason"] for w in writes if w.kind == "Event" and w.body["type"] != "Normal"
    ]
    assert warnings == []


def test_every_router_the_schema_admits_is_registered() -> None:
    admitted = get_args(Traffic.model_fields["router"].annotation)
    assert set(admitted) == set(ROUTERS)
    assert all(router.name == name for name, router in ROUTERS.items())


def test_a_firing_check_calls_its_webhook_once_after_the_status_that_records_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The webhook goes after the status write (a crash in between loses the call, never
    repeats it on a status that does not say it fired), with the Event; no call while the
    check keeps firing."""
    world = World()
    world.edit(monitoring={**OOD_EVERY_10S, "webhook": {"url": "http://hooks.ml:8080/"}})
    scrapes = iter(
        VariantCounters(pods=2, input_rows=rows, out_of_range_rows=oor)
        for rows, oor in [(100, 0), (200, 50), (300, 100), (400, 150)]
    )
    monkeypatch.setattr("coalmine.reconcile._scrape", lambda *_: next(scrapes))
    calls: list[dict[str, Any]] = []

    def send(notification: Notification) -> None:
        calls.append(notification.body)
        world.kube.writes.append(Write("webhook", "", notification.url, notification.body))

    monkeypatch.setattr("coalmine.reconcile.send", send)
    world.until("Healthy")  # the first scrape, once stable serves: a baseline
    writes = world.reconcile(10)  # 50 of 100 rows out of range: it fires
    hook = next(i for i, w in enumerate(writes) if w.verb == "webhook")
    status = next(i for i, w in enumerate(writes) if w.verb == "apply_status")
    event = next(i for i, w in enumerate(writes) if w.kind == "Event")
    assert status < event < hook
    assert writes[status].body["status"]["monitoring"]["checks"][0]["state"] == "Firing"
    assert [c["check"] for c in calls] == ["ood"]
    world.reconcile(1)  # not due: no scrape, no call
    world.reconcile(10)  # still firing: no second call
    assert len(calls) == 1


def test_monitoring_waits_for_a_serving_pod_instead_of_stamping_empty_measurements(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no pod ready there is nothing to measure: no scrape, no status write every
    interval, and no requeue for it (a pod turning ready is a watch event)."""
    world = World()
    world.edit(
        replicas=0,
        monitoring=OOD_EVERY_10S,
    )

    def scrape(*_: Any) -> None:
        pytest.fail("scraped a variant with no pod serving")

    monkeypatch.setattr("coalmine.reconcile._scrape", scrape)
    world.until("Healthy")
    world.reconcile(30)
    assert world.reconcile(30) == []
    world.now += timedelta(seconds=30)
    assert reconcile_deployment(world.kube, NS, "iris", clock=lambda: world.now) is None
