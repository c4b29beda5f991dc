"""Micro-batching: no added latency when alone, bounded batches under load."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from coalmine_serving.batching import (
    DISCONNECTED,
    EXPIRED,
    REFUSED,
    Batcher,
    ModelFailure,
)
from coalmine_serving.errors import Overloaded


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


def slow(seconds: float) -> Any:
    def predict(x: np.ndarray) -> np.ndarray:
        time.sleep(seconds)
        return x[:, 0]

    return predict


def test_requests_that_waited_past_the_budget_are_refused_when_their_batch_comes() -> None:
    shed: list[str] = []

    async def scenario() -> list[str]:
        batcher = Batcher(slow(0.03), lambda x, y: None, max_batch_size=1, max_wait_ms=0,
                          max_queue_ms=10, on_shed=shed.append)  # fmt: skip
        futures = [batcher.submit(np.array([[float(i)]])) for i in range(3)]
        out = []
        for f in futures:
            try:
                out.append(str((await f).tolist()))
            except Overloaded as exc:
                out.append(f"503 retry {exc.retry_after}")
        return out

    assert run(scenario()) == ["[0.0]", "503 retry 1", "503 retry 1"]
    assert shed == [EXPIRED, EXPIRED]


def test_a_request_delayed_by_a_stall_and_no_batch_ahead_is_computed() -> None:
    """A throttled or paused process delays the next turn; that is no queue to shed from."""
    shed: list[str] = []

    async def scenario() -> list[float]:
        batcher = Batcher(slow(0.001), lambda x, y: None, max_batch_size=1, max_wait_ms=0,
                          max_queue_ms=10, on_shed=shed.append)  # fmt: skip
        await batcher.submit(np.array([[1.0]]))  # an earlier batch, long done
        future = batcher.submit(np.array([[2.0]]))
        time.sleep(0.03)  # the loop stalls 30 ms before its next turn, past the 10 ms budget
        return (await future).tolist()  # type: ignore[no-any-return]

    assert run(scenario()) == [2.0]
    assert shed == []


def test_admission_refuses_when_the_batches_ahead_outlast_the_budget() -> None:
    shed: list[str] = []

    async def scenario() -> tuple[float, float]:
        batcher = Batcher(slow(0.02), lambda x, y: None, max_batch_size=2, max_wait_ms=0,
                          max_queue_ms=30, on_shed=shed.append)  # fmt: skip
        await batcher.submit(np.zeros((1, 1)))  # one call measured: about 20 ms
        batcher.admit()  # nothing queued
        for _ in range(3):
            batcher.submit(np.zeros((1, 1)))
        one_batch_ahead = batcher.expected_wait()
        batcher.admit()  # one full batch ahead: ~20 ms, within 30
        batcher.submit(np.zeros((1, 1)))
        with pytest.raises(Overloaded, match="--max-queue-ms"):
            batcher.admit()  # two full batches ahead: ~40 ms
        return one_batch_ahead, batcher.expected_wait()

    one, two = run(scenario())
    assert two == pytest.approx(2 * one)
    assert shed == [REFUSED]


def test_a_cancelled_request_is_not_computed() -> None:
    calls: list[int] = []
    shed: list[str] = []

    def predict(x: np.ndarray) -> np.ndarray:
        calls.append(x.shape[0])
        return x[:, 0]

    async def scenario() -> list[float]:
        batcher = Batcher(predict, lambda x, y: None, max_batch_size=8, max_wait_ms=0,
                          on_shed=shed.append)  # fmt: skip
        kept = batcher.submit(np.array([[1.0]]))
        batcher.submit(np.array([[2.0]])).cancel()  # its client went away
        return (await kept).tolist()  # type: ignore[no-any-return]

    assert run(scenario()) == [1.0]
    assert calls == [1]
    assert shed == [DISCONNECTED]


def test_without_a_budget_nothing_is_refused() -> None:
    async def scenario() -> int:
        batcher = Batcher(slow(0.005), lambda x, y: None, max_batch_size=1, max_wait_ms=0)
        futures = [batcher.submit(np.zeros((1, 1))) for _ in range(10)]
        for _ in range(10):
            batcher.admit()
        return len([await f for f in futures])

    assert run(scenario()) == 10
