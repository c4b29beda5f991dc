"""Adaptive micro-batching: concurrent requests share one model call.

A request never waits for a timer when nothing else is queued: the batch is
flushed on the next event-loop turn, after every request that arrived in the
same poll has joined it. Only when the previous batch was larger than what is
queued now (so more requests are probably on their way) does it wait, at most
``max_wait_ms`` after the oldest request. One model call is cheap next to
per-call overhead, which is why a forest answers 64 rows about as fast as one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from coalmine_serving.fastpath import Predict

log = logging.getLogger(__name__)

Array = npt.NDArray[Any]


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
    ) -> None:
        self._predict = predict
        self._on_batch = on_batch
        self._max_rows = max_batch_size
        self._max_wait = max_wait_ms / 1000.0
        self._pending: list[tuple[npt.NDArray[np.float64], asyncio.Future[Array]]] = []
        self._rows = 0
        self._first_at = 0.0
        self._last_rows = 1
        self._scheduled = False

    def submit(self, x: npt.NDArray[np.float64]) -> asyncio.Future[Array]:
        """Queue rows; the future gets their predictions in order."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Array] = loop.create_future()
        if not self._pending:
            self._first_at = time.monotonic()
        self._pending.append((x, future))
        self._rows += x.shape[0]
        if self._rows >= self._max_rows:
            self._flush()
        elif not self._scheduled:
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
        take, rows = 0, 0
        for x, _ in self._pending:
            if take and rows + x.shape[0] > self._max_rows:
                break
            take += 1
            rows += x.shape[0]
        batch, self._pending = self._pending[:take], self._pending[take:]
        self._rows -= rows
        self._last_rows = rows
        if self._pending:
            self._first_at = time.monotonic()
            if not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._tick)
        try:
            self._run(batch)
        except ModelFailure:
            for x, future in batch:  # isolate the request that broke the batch
                try:
                    self._run([(x, future)])
                except ModelFailure as exc:
                    future.set_exception(exc)

    def _run(self, batch: list[tuple[npt.NDArray[np.float64], asyncio.Future[Array]]]) -> None:
        x = batch[0][0] if len(batch) == 1 else np.concatenate([b[0] for b in batch])
        try:
            out = np.asarray(self._predict(x))
        except Exception as exc:
            if len(batch) == 1:
                log.exception("model failed on %d rows", x.shape[0])
            raise ModelFailure(f"model failed: {type(exc).__name__}: {exc}") from exc
        self._on_batch(x, out)
        start = 0
        for rows, future in batch:
            end = start + rows.shape[0]
            if not future.done():
                future.set_result(out[start:end])
            start = end
