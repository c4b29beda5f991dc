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

from coalmine.metrics import RECONCILE

log = logging.getLogger("coalmine.controller")

Key = tuple[str, str, str]  # (kind, namespace, name)
Reconciler = Callable[[str, str], float | None]

MAX_BACKOFF = 60.0
RESYNC_SECONDS = 300.0  # a safety net: watch events and plans' deadlines drive the rest


@dataclass
class Controller:
    reconcilers: dict[str, Reconciler]
    workers: int = 4
    queue: asyncio.Queue[Key] = field(default_factory=asyncio.Queue)
    queued: set[Key] = field(default_factory=set)
    active: set[Key] = field(default_factory=set)
    dirty: set[Key] = field(default_factory=set)
    failures: dict[Key, int] = field(default_factory=dict)
    timers: dict[Key, asyncio.TimerHandle] = field(default_factory=dict)

    def enqueue(self, key: Key) -> None:
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

    def _fire(self, key: Key) -> None:
        self.timers.pop(key, None)
        self.enqueue(key)

    async def run(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self.workers)))

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            self.queued.discard(key)
            self.active.add(key)
            kind, namespace, name = key
            started, result = time.monotonic(), "success"
            try:
                delay = await asyncio.to_thread(self.reconcilers[kind], namespace, name)
                self.failures.pop(key, None)
            except Exception:
                result = "error"
                attempts = self.failures.get(key, 0) + 1
                self.failures[key] = attempts
                delay = min(MAX_BACKOFF, 0.5 * 2**attempts)
                log.exception("reconcile of %s %s/%s failed; retry in %.1fs", *key, delay)
            finally:
                RECONCILE.labels(kind, result).observe(time.monotonic() - started)
                self.active.discard(key)
                self.queue.task_done()
            if key in self.dirty:
                self.dirty.discard(key)
                self.enqueue(key)
            self.enqueue_after(key, RESYNC_SECONDS if delay is None else max(0.2, delay))
