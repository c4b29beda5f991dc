"""Micro-batching: no added latency when alone, bounded batches under load."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from coalmine_serving.batching import Batcher, ModelFailure


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_requests_arriving_together_share_one_call_up_to_the_bound() -> None:
    calls: list[int] = []

    def predict(x: np.ndarray) -> np.ndarray:
        calls.append(x.shape[0])
        return x[:, 0] * 2

    async def scenario() -> list[Any]:
        batcher = Batcher(predict, lambda x, y: None, max_batch_size=4, max_wait_ms=0)
        futures = [batcher.submit(np.array([[float(i)]])) for i in range(10)]
        return [(await f).tolist() for f in futures]

    results = run(scenario())
    assert results == [[2.0 * i] for i in range(10)]
    assert calls == [4, 4, 2]


def test_a_lone_request_is_not_delayed_by_the_wait() -> None:
    async def scenario() -> float:
        batcher = Batcher(lambda x: x[:, 0], lambda x, y: None, max_batch_size=64, max_wait_ms=500)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await batcher.submit(np.zeros((1, 1)))
        return loop.time() - start

    assert run(scenario()) < 0.25  # the wait is 0.5 s


def test_a_model_failure_fails_only_its_request() -> None:
    def predict(x: np.ndarray) -> np.ndarray:
        if np.any(x < 0):
            raise ValueError("negative")
        return x[:, 0]

    async def scenario() -> list[str]:
        batcher = Batcher(predict, lambda x, y: None, max_batch_size=8, max_wait_ms=0)
        futures = [batcher.submit(np.array([[v]])) for v in (1.0, -1.0, 2.0)]
        out = []
        for f in futures:
            try:
                out.append(str((await f).tolist()))
            except ModelFailure as exc:
                out.append(str(exc))
        return out

    assert run(scenario()) == ["[1.0]", "model failed: ValueError: negative", "[2.0]"]
