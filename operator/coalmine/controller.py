"""A work queue over reconcile functions: one reconcile per object at a time, retried.

Kopf delivers watch events; this queue decides when to reconcile. Keys are
deduplicated while queued, an object is never reconciled twice at once, a
failed reconcile is retried with backoff, and a plan's `requeue_after` becomes
a delayed re-queue. Nothing here is state that must survive a restart: a new
process re-lists every object at start and continues from their status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from coalmine.kube.client import NotLeading
from coalmine.metrics import RECONCILE

log = logging.getLogger("coalmine.controller")

Key = tuple[str, str, str]  # (kind, namespace, name)
Reconciler = Callable[[str, str], float | None]
FailureReporter = Callable[[str, str, str, Exception], None]
"""(kind, namespace, name, error): make a failed reconcile visible on the object."""

MAX_BACKOFF = 60.0
NOT_LEADING_RETRY = 1.0
WORKERS = 4
"""Reconciles at once. More do not help where the API server is the limit: at 1,000 new
ModelDeployments on the 2-core benchmark machine, 16 workers converged no sooner than 4
(108 s against 92-109 s), each reconcile just waited longer (582 ms against 130-156 ms),
and the API server used most of the CPU (benchmarks/operator)."""
RESYNC_SECONDS = 300.0  # a safety net: watch events and plans' deadlines drive the rest


@dataclass
class Controller:
    reconcilers: dict[str, Reconciler]
    report_failure: FailureReporter | None = None
    workers: int = WORKERS
    queue: asyncio.Queue[Key] = field(default_factory=asyncio.Queue)
    queued: set[Key] = field(default_factory=set)
    active: set[Key] = field(default_factory=set)
    dirty: set[Key] = field(default_factory=set)
    failures: dict[Key, int] = field(default_factory=dict)
    timers: dict[Key, asyncio.TimerHandle] = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop | None = None
    """The loop `run` works on; the queue and the sets are touched only from it."""
    gate: asyncio.Event | None = None
    """Set while this replica leads (leader election); workers take keys only then, while
    the watches keep filling the queue so a standby starts with every key."""

    def enqueue(self, key: Key) -> None:
        """Queue `key`; safe from any thread (off the loop, it is handed to the loop)."""
        if self.loop is not None and not _running_on(self.loop):
            self.loop.call_soon_threadsafe(self._enqueue, key)
            return
        self._enqueue(key)

    def _enqueue(self, key: Key) -> None:
        if key in self.active:
            self.dirty.add(key)  # reconcile again once the running one ends
        elif key not in self.queued:
            self.queued.add(key)
            self.queue.put_nowait(key)

    def enqueue_after(self, key: Key, delay: float) -> None:
        loop = asyncio.get_running_loop()
        previous = self.timers.get(key)
        due = loop.time() + delay
        if previous is not None and previous.when() <= due:
            return
        if previous is not None:
            previous.cancel()
        self.timers[key] = loop.call_at(due, self._fire, key)

    async def _report(self, key: Key, error: Exception) -> None:
        if self.report_failure is None:
            return
        try:
            await asyncio.to_thread(self.report_failure, *key, error)
        except Exception:  # the retry still comes; the log has both errors
            log.exception("could not report the failed reconcile of %s %s/%s", *key)

    def _fire(self, key: Key) -> None:
        self.timers.pop(key, None)
        self.enqueue(key)

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        await asyncio.gather(*(self._worker() for _ in range(self.workers)))

    async def _worker(self) -> None:
        while True:
            if self.gate is not None:
                await self.gate.wait()
            key = await self.queue.get()
            self.queued.discard(key)
            self.active.add(key)
            kind, namespace, name = key
            started, result = time.monotonic(), "success"
            try:
                delay = await asyncio.to_thread(self.reconcilers[kind], namespace, name)
                self.failures.pop(key, None)
            except NotLeading:  # the lease may be someone else's: whoever leads redoes it
                result, delay = "not_leading", NOT_LEADING_RETRY
                log.info("reconcile of %s %s/%s stopped: not the leader", *key)
            except Exception as exc:
                result = "error"
                attempts = self.failures.get(key, 0) + 1
                self.failures[key] = attempts
                delay = min(MAX_BACKOFF, 0.5 * 2**attempts)
                log.exception("reconcile of %s %s/%s failed; retry in %.1fs", *key, delay)
                await self._report(key, exc)
            finally:
                RECONCILE.labels(kind, result).observe(time.monotonic() - started)
                self.active.discard(key)
                self.queue.task_done()
            if key in self.dirty:
                self.dirty.discard(key)
                self.enqueue(key)
            self.enqueue_after(key, RESYNC_SECONDS if delay is None else max(0.2, delay))


def _running_on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
