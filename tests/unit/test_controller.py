"""The work queue: every path into it runs on its loop, and failures are made visible."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

import coalmine.handlers
from coalmine.controller import Controller, Key
from coalmine.kube.client import NotLeading
from coalmine.reconcile import RECONCILE_ERROR, error_text, report_failure

KEY: Key = ("ModelDeployment", "ml", "iris")


async def until(check: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_a_key_enqueued_from_another_thread_is_reconciled_at_once() -> None:
    """An idle loop sleeps in select(); a key queued from a thread must wake it (a plain
    put_nowait from there does not, and the key waits for the next unrelated event)."""
    done = threading.Event()

    def reconcile(ns: str, name: str) -> None:
        done.set()

    async def scenario() -> bool:
        ctl = Controller({"ModelDeployment": reconcile})
        task = asyncio.create_task(ctl.run())
        await until(lambda: ctl.loop is not None)
        await asyncio.sleep(0.05)  # the workers now wait on the empty queue

        def later() -> None:
            time.sleep(0.2)  # by then the loop sleeps in select(), waiting for `done`
            ctl.enqueue(KEY)

        threading.Thread(target=later).start()
        # Nothing else wakes the loop until this thread ends: it waits for the reconcile.
        reconciled = await asyncio.to_thread(done.wait, 3)
        task.cancel()
        return reconciled

    assert asyncio.run(scenario()), "the key queued from a thread was not reconciled"


def test_every_kopf_handler_runs_on_the_loop() -> None:
    handlers = [
        obj
        for name, obj in vars(coalmine.handlers).items()
        if name.startswith("on_") and callable(obj)
    ]
    assert len(handlers) >= 5
    assert all(inspect.iscoroutinefunction(h) for h in handlers), handlers


def test_a_failed_reconcile_is_reported_and_retried() -> None:
    reported: list[tuple[str, str, str, str]] = []
    attempts: list[int] = []

    def failing(ns: str, name: str) -> float | None:
        attempts.append(1)
        raise ValueError("spec.resources: quantity out of range")

    async def scenario() -> None:
        ctl = Controller(
            {"ModelDeployment": failing},
            report_failure=lambda k, ns, n, e: reported.append((k, ns, n, str(e))),
        )
        task = asyncio.create_task(ctl.run())
        await until(lambda: ctl.loop is not None)
        ctl.enqueue(KEY)
        await until(lambda: len(attempts) >= 2, timeout=5)  # backoff 1 s, then again
        task.cancel()

    asyncio.run(scenario())
    assert reported[0] == (*KEY, "spec.resources: quantity out of range")


class RecordingKube:
    """The kube layer's reads and writes that report_failure uses, recorded in order."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body, self.writes = body, []  # type: ignore[var-annotated]

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return self.body

    def apply_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.writes.append(("status", status))
        self.body = {**self.body, "status": status}

    def create(self, manifest: dict[str, Any]) -> None:
        self.writes.append(("event", manifest))


def test_a_failure_sets_stalled_with_the_error_and_posts_one_event() -> None:
    body = {
        "apiVersion": "coalmine.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "ml", "uid": "u1", "generation": 3},
        "status": {"phase": "Healthy", "stable": {"modelVersion": "iris-v1"}},
    }
    kube = RecordingKube(body)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    error = ValueError("Deployment.apps is invalid: spec.replicas: must be <= 2147483647")
    for _ in range(3):
        report_failure(kube, "ModelDeployment", "ml", "iris", error, clock=lambda: now)  # type: ignore[arg-type]
    kinds = [kind for kind, _ in kube.writes]
    assert kinds == ["status", "event"], "one status write and one Event per distinct error"
    status = kube.writes[0][1]
    assert status["phase"] == "Healthy", "the rest of status is kept"
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", RECONCILE_ERROR)
    assert "spec.replicas: must be <= 2147483647" in stalled["message"]
    event = kube.writes[1][1]
    assert (event["type"], event["reason"]) == ("Warning", RECONCILE_ERROR)


def test_a_model_version_wakes_the_deployments_that_want_or_serve_it() -> None:
    md = {
        "spec": {"modelVersion": "iris-v2"},
        "status": {"stable": {"modelVersion": "iris-v1"}, "canary": {"modelVersion": "iris-v2"}},
    }
    assert coalmine.handlers.uses(md) == {"iris-v1", "iris-v2"}
    assert coalmine.handlers.uses({"spec": {"modelVersion": "a"}}) == {"a"}


def test_an_api_error_reads_as_the_servers_message_the_same_on_every_retry() -> None:
    body = (
        '{"kind":"Status","message":".status.analysisRun.progressedAt: field not declared'
        ' in schema","code":500}'
    )
    errors = [ApiException(status=500, reason="Internal Server Error") for _ in range(2)]
    for i, e in enumerate(errors):
        e.body = body
        e.headers = {"Audit-Id": str(i)}
    texts = {error_text(e) for e in errors}
    assert texts == {
        "500 Internal Server Error: .status.analysisRun.progressedAt: field not declared in schema"
    }
    assert error_text(ValueError("x")) == "ValueError: x"


def test_a_standby_queues_keys_but_reconciles_only_once_it_leads() -> None:
    done: list[str] = []

    async def scenario() -> list[str]:
        gate = asyncio.Event()
        ctl = Controller({"ModelDeployment": lambda ns, n: done.append(n)}, gate=gate)
        task = asyncio.create_task(ctl.run())
        ctl.enqueue(KEY)
        await asyncio.sleep(0.2)
        assert done == []  # standing by
        assert KEY in ctl.queued
        gate.set()
        await until(lambda: done == ["iris"])
        task.cancel()
        return done

    assert asyncio.run(scenario()) == ["iris"]


def test_a_reconcile_fenced_mid_way_is_retried_without_a_failure_report() -> None:
    calls: list[int] = []
    reports: list[Exception] = []

    def reconcile(ns: str, name: str) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise NotLeading("PATCH ...: this replica does not hold the lease")

    async def scenario() -> None:
        ctl = Controller(
            {"ModelDeployment": reconcile}, report_failure=lambda *a: reports.append(a[-1])
        )
        task = asyncio.create_task(ctl.run())
        ctl.enqueue(KEY)
        await until(lambda: len(calls) == 2, timeout=5)
        assert KEY not in ctl.failures
        task.cancel()

    asyncio.run(scenario())
    assert reports == []
