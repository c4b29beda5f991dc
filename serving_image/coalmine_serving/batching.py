"""Adaptive micro-batching: concurrent requests share one model call.

A request never waits for a timer when nothing else is queued: the batch is
flushed on the next event-loop turn, after every request that arrived in the
same poll has joined it. One batch runs per turn, so requests that arrive while
the model computes are read on the next turn and queue here, where their wait
can be seen, not unseen in the kernel's socket buffers. Only when the previous
batch was larger than what is queued now (so more requests are probably on
their way) does it wait, at most ``max_wait_ms`` after the oldest request. One
model call is cheap next to per-call overhead, which is why a forest answers 64
rows about as fast as one.

Overload is refused, not queued (issue 15). With a queueing budget of
``max_queue_ms``, a request is refused at once (`Overloaded`, a 503) when the
batches queued ahead of it would take longer than the budget, measured by the
recent model calls; a request that waited behind other batches past the budget
is refused when its batch comes instead of computed (one that waited behind no
batch, only a stalled process, say a CPU-throttled pod, is computed); and a
request whose client has gone (its future cancelled) is dropped uncomputed.
Each is counted through ``on_shed`` with its reason.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from coalmine_serving.errors import Overloaded
from coalmine_serving.fastpath import Predict

log = logging.getLogger(__name__)

Array = npt.NDArray[Any]
Entry = tuple[npt.NDArray[np.float64], "asyncio.Future[Array]", float]
"""Rows, the future of their predictions, and when they were queued."""

REFUSED = "refused"
"""Shed at admission: the queue ahead would take longer than the budget."""
EXPIRED = "expired"
"""Shed when its batch came: it had waited behind other batches longer than the budget."""
DISCONNECTED = "disconnected"
"""Dropped uncomputed: the client had gone."""
SMOOTHING = 0.2  # weight of the newest model call in the running mean of call time


class ModelFailure(Exception):
    """The model raised on input that passed validation: a server error."""


class Batcher:
    """Queues row blocks and runs them through ``predict`` in bounded batches."""

    def __init__(
        self,
        predict: Predict,
        on_batch: Callable[[npt.NDArray[np.float64], Array], None],
        *,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue_ms: float = 0.0,
        on_shed: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._predict = predict
        self._on_batch = on_batch
        self._on_shed = on_shed
        self._max_rows = max_batch_size
        self._max_wait = max_wait_ms / 1000.0
        self._budget = max_queue_ms / 1000.0
        self._pending: list[Entry] = []
        self._rows = 0
        self._first_at = 0.0
        self._last_rows = 1
        self._scheduled = False
        self._call_seconds = 0.0
        self._flushed_at = 0.0

    def expected_wait(self) -> float:
        """Seconds until a request queued now gets into a batch: the full batches ahead
        of it, at the running mean of a model call (it joins a batch not yet full)."""
        return (self._rows // self._max_rows) * self._call_seconds

    def admit(self) -> None:
        """Raise `Overloaded` (counted as refused) when the queue ahead would outlast the
        budget."""
        refused = self.over_budget()
        if refused is not None:
            self._on_shed(REFUSED)
            raise refused

    def over_budget(self) -> Overloaded | None:
        """The refusal, uncounted, when the queue ahead would outlast the budget."""
        if self._budget:
            wait = self.expected_wait()
            if wait > self._budget:
                return overloaded(wait, self._budget)
        return None

    def submit(self, x: npt.NDArray[np.float64]) -> asyncio.Future[Array]:
        """Queue rows; the future gets their predictions in order."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Array] = loop.create_future()
        now = time.monotonic()
        if not self._pending:
            self._first_at = now
        self._pending.append((x, future, now))
        self._rows += x.shape[0]
        if not self._scheduled:  # never computed inline: a full queue must stay visible
            self._scheduled = True
            loop.call_soon(self._tick)
        return future

    def _tick(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        if self._max_wait > 0 and self._rows < self._last_rows:
            remaining = self._first_at + self._max_wait - time.monotonic()
            if remaining > 0:
                self._scheduled = True
                asyncio.get_running_loop().call_later(remaining, self._tick)
                return
        self._flush()

    def _flush(self) -> None:
        """Run one batch of at most max_batch_size rows (or one larger request)."""
        now, previous = time.monotonic(), self._flushed_at
        self._flushed_at = now
        take, rows = 0, 0
        batch: list[Entry] = []
        for entry in self._pending:
            x, future, queued = entry
            if batch and rows + x.shape[0] > self._max_rows:
                break
            take += 1
            if future.done():
                self._on_shed(DISCONNECTED)
            elif self._budget and queued < previous and now - queued > self._budget:
                self._on_shed(EXPIRED)
                future.set_exception(overloaded(now - queued, self._budget))
            else:
                batch.append(entry)
                rows += x.shape[0]
        self._rows -= sum(x.shape[0] for x, _, _ in self._pending[:take])
        self._pending = self._pending[take:]
        self._last_rows = max(rows, 1)
        if self._pending:
            self._first_at = self._pending[0][2]
            if not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._tick)
        if not batch:
            return
        started = time.perf_counter()
        try:
            self._run(batch)
        except ModelFailure:
            for entry in batch:  # isolate the request that broke the batch
                try:
                    self._run([entry])
                except ModelFailure as exc:
                    entry[1].set_exception(exc)
        took = time.perf_counter() - started
        if self._call_seconds:
            self._call_seconds += SMOOTHING * (took - self._call_seconds)
        else:
            self._call_seconds = took

    def _run(self, batch: list[Entry]) -> None:
        x = batch[0][0] if len(batch) == 1 else np.concatenate([b[0] for b in batch])
        try:
            out = np.asarray(self._predict(x))
        except Exception as exc:
            if len(batch) == 1:
                log.exception("model failed on %d rows", x.shape[0])
            raise ModelFailure(f"model failed: {type(exc).__name__}: {exc}") from exc
        self._on_batch(x, out)
        start = 0
        for rows, future, _ in batch:
            end = start + rows.shape[0]
            if not future.done():
                future.set_result(out[start:end])
            start = end


def overloaded(wait: float, budget: float) -> Overloaded:
    """The refusal: how long the wait is or was, and when to try again."""
    return Overloaded(
        f"overloaded: the queue's wait ({wait * 1000:.0f} ms) is over its budget"
        f" ({budget * 1000:.0f} ms, --max-queue-ms); retry later",
        retry_after=max(1, math.ceil(wait)),
    )
