"""Kopf wiring only: watch events become work-queue keys; no decisions here.

Only event and index handlers are used: no on.create/on.update state, no timers or
daemons. So kopf stores no progress and adds no finalizers: the operator writes nothing to
its resources but `status`, deleting a resource never waits for the operator, and all
rollout memory stays in `status`. Every handler is `async`, so it runs on the loop that
owns the work queue (kopf runs a plain `def` in a worker thread).

The index handlers fill the watch cache (kube/cache.py), not kopf's indices: kopf runs no
event handler before every indexed kind is listed, so once the first one runs the cache is
complete and reconciles read it instead of the API server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, NamedTuple

import kopf

from coalmine.api.base import GROUP, VERSION
from coalmine.controller import WORKERS, Controller
from coalmine.kube.cache import Cache
from coalmine.kube.client import KINDS, Kube
from coalmine.leadership import Leadership
from coalmine.reconcile import reconcile_deployment, reconcile_model_version, report_failure
from coalmine.resources.naming import DEPLOYMENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from coalmine.resources.validation_job import MODEL_VERSION_LABEL

log = logging.getLogger("coalmine.handlers")
MANAGED = {MANAGED_BY_LABEL: MANAGED_BY}
CACHED = {
    "ModelDeployment": None,
    "ModelVersion": None,
    "RolloutStrategy": None,
    "Deployment": MANAGED,
    "Pod": MANAGED,
    "Job": MANAGED,
    "Service": MANAGED,
    "HorizontalPodAutoscaler": MANAGED,
}
"""The kinds the operator reads, and the labels that narrow a kind to what it owns. Routes
are left out: their CRDs may be missing, and a kind kopf cannot watch would leave gaps."""
REMEMBERED = ("ConfigMap",)
"""Written, never read (the chart grants no reads of ConfigMaps): only our answers are kept."""

_state: dict[str, Any] = {}


class Election(NamedTuple):
    """Where the Lease lives and who this replica is in it."""

    namespace: str
    lease: str
    identity: str


def elect(election: Election | None) -> None:
    """Before kopf starts: take part in this election (None: reconcile alone)."""
    _state["election"] = election


def work_with(workers: int) -> None:
    """Before kopf starts: how many reconciles run at once."""
    _state["workers"] = workers


def controller() -> Controller:
    ctl: Controller = _state["controller"]
    return ctl


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    workers = _state.get("workers", WORKERS)
    # Reconciles run in threads (asyncio.to_thread): the default pool, min(32, CPUs + 4),
    # would hold more workers than that to it. A few more for the Lease and the handlers.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=workers + 4, thread_name_prefix="coalmine")
    )
    kube = Kube(connections=workers)
    kube.cache = _state["cache"] = Cache(CACHED, REMEMBERED)
    started = datetime.now(UTC)
    leadership: Leadership | None = None

    def watching_since() -> datetime:
        """Since when this process can act: its lease taken, or without election its start."""
        return (leadership.leading_since if leadership else None) or started

    ctl = Controller(
        {
            "ModelDeployment": lambda ns, n: reconcile_deployment(
                kube, ns, n, watching_since=watching_since()
            ),
            "ModelVersion": lambda ns, n: reconcile_model_version(kube, ns, n),
        },
        report_failure=lambda kind, ns, n, error: report_failure(kube, kind, ns, n, error),
        workers=workers,
    )
    tasks = [ctl.run()]
    election: Election | None = _state.get("election")
    if election is not None:
        leadership = Leadership(Kube(), election.namespace, election.lease, election.identity)
        kube.fence, ctl.gate = leadership.may_write, leadership.leading
        tasks.append(leadership.run())
        _state["leadership"] = leadership
        log.info("leader election: lease %s/%s as %s", *election)
    else:
        log.warning("leader election off: this process reconciles alone (--lease-namespace)")
    _state["controller"] = ctl
    _state["kube"] = kube
    _state["task"] = asyncio.create_task(_all(tasks))


async def _all(tasks: list[Coroutine[Any, Any, None]]) -> None:
    await asyncio.gather(*tasks)


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    task = _state.get("task")
    if task is not None:
        task.cancel()
    leadership: Leadership | None = _state.get("leadership")
    if leadership is not None:
        await asyncio.to_thread(leadership.release)


def _cache() -> Cache:
    cache: Cache = _state["cache"]
    return cache


def _indexer(kind: str) -> None:
    """Register the index handler that keeps `kind` in the cache."""
    k = KINDS[kind]

    async def store(body: kopf.Body, **_: Any) -> None:
        _cache().store(kind, body)

    store.__name__ = f"cache_{k.plural}"
    kopf.index(k.group, k.version, k.plural, id=store.__name__, labels=CACHED[kind])(store)


for _kind in CACHED:
    _indexer(_kind)


def _seen(type: str | None, body: Mapping[str, Any]) -> None:
    """Every event handler's first step: the cache is complete (kopf ran this handler only
    after every indexed kind was listed), and a deleted object leaves it."""
    cache = _cache()
    cache.ready = True
    if type == "DELETED":
        meta = body["metadata"]
        cache.forget(str(body["kind"]), meta.get("namespace"), meta["name"])


@kopf.on.event(GROUP, VERSION, "modeldeployments")
async def on_model_deployment(
    type: str, body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> None:
    _seen(type, body)
    if type != "DELETED" and namespace:
        controller().enqueue(("ModelDeployment", namespace, name))


@kopf.on.event(GROUP, VERSION, "modelversions")
async def on_model_version(
    type: str, body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> None:
    _seen(type, body)
    if not namespace:
        return
    ctl = controller()
    if type != "DELETED":
        ctl.enqueue(("ModelVersion", namespace, name))
    # Deployments that want this version, or serve it (a deletion too), re-decide.
    kube: Kube = _state["kube"]
    for md in await asyncio.to_thread(kube.list, "ModelDeployment", namespace):
        if name in uses(md):
            ctl.enqueue(("ModelDeployment", namespace, md["metadata"]["name"]))


def uses(md: Mapping[str, Any]) -> set[str]:
    """The ModelVersions a ModelDeployment asks for or serves."""
    status = md.get("status") or {}
    serving = {(status.get(v) or {}).get("modelVersion") for v in ("stable", "canary")}
    return {md.get("spec", {}).get("modelVersion"), *serving} - {None}


@kopf.on.event(GROUP, VERSION, "rolloutstrategies")
async def on_strategy(
    type: str, body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> None:
    _seen(type, body)
    if not namespace:
        return
    kube: Kube = _state["kube"]
    for md in await asyncio.to_thread(kube.list, "ModelDeployment", namespace):
        if (md["spec"].get("strategyRef") or {}).get("name") == name:
            controller().enqueue(("ModelDeployment", namespace, md["metadata"]["name"]))


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED)
@kopf.on.event("", "v1", "pods", labels=MANAGED)
@kopf.on.event("", "v1", "services", labels=MANAGED)
@kopf.on.event("autoscaling", "v2", "horizontalpodautoscalers", labels=MANAGED)
async def on_child(
    type: str,
    body: kopf.Body,
    namespace: str | None,
    labels: Mapping[str, str],
    **_: Any,
) -> None:
    """A child changed or went away (a Service deleted by hand is written again)."""
    _seen(type, body)
    if not namespace:
        return
    owner = labels.get(DEPLOYMENT_LABEL)
    if owner:
        controller().enqueue(("ModelDeployment", namespace, owner))
    mv = labels.get(MODEL_VERSION_LABEL)
    if mv:
        controller().enqueue(("ModelVersion", namespace, mv))


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def on_job(type: str, body: kopf.Body, namespace: str | None, labels: Mapping[str, str],
                 **_: Any) -> None:  # fmt: skip
    _seen(type, body)
    mv = labels.get(MODEL_VERSION_LABEL)
    if mv and namespace:
        controller().enqueue(("ModelVersion", namespace, mv))
