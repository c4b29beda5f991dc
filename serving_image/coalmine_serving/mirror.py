"""The tee of shadow steps: a stable pod copies a share of its requests to the canary.

The copy happens after the client has its answer, so it never delays, changes or fails
a client's request. Sampled rows wait in a small buffer and go to the canary in one V2
request per batch (binary tensors, at most ``BATCH_ROWS`` rows or ``LINGER_SECONDS``
old): one HTTP exchange per batch, at most 50 a second below full batches, keeps the
stable pod's cost per mirrored request a fraction of serving it
(benchmarks/serving/mirror.py). In flight and buffered work is bounded; what exceeds it is
dropped and counted. The canary's answers are compared row by row with the stable
answers (agreement.py) and counted by `MirrorStats`.

The target comes from a file the operator writes through a ConfigMap (``--mirror-config``),
read again every ``POLL_SECONDS``: a JSON object with ``url`` (the canary Service),
``percent`` and ``canary`` (its version, a metric label). No file, or 0 percent, is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import orjson

from coalmine_serving import agreement
from coalmine_serving.client import response_head
from coalmine_serving.http import MIRROR_HEADER

log = logging.getLogger("coalmine_serving")

POLL_SECONDS = 1.0
BATCH_ROWS = 256
LINGER_SECONDS = 0.02
MAX_IN_FLIGHT = 4
MAX_BUFFERED_ROWS = 4096
TIMEOUT_SECONDS = 2.0
MAX_EXAMPLES = 20
MAX_CANARIES = 4
"""Canary versions whose figures a pod keeps (the newest); older ones leave the metrics."""

COMPARED = "compared"
MISMATCHED = "mismatched"
ERROR = "error"
TIMEOUT = "timeout"
UNREACHABLE = "unreachable"
DROPPED = "dropped"
OUTCOMES = (COMPARED, MISMATCHED, ERROR, TIMEOUT, UNREACHABLE, DROPPED)
"""What became of a mirrored request: its rows were compared, or the canary answered
another shape, an error status, nothing in time, or could not be reached; or it was
dropped here because the mirror was at its bounds."""


@dataclass(frozen=True)
class Target:
    """Where and how much to mirror."""

    host: str
    port: int
    percent: float
    canary: str
    examples: bool = True


def parse_target(text: str) -> Target | None:
    """The mirror file's content as a Target; None when it mirrors nothing.

    Raises ValueError naming the problem (the previous target is then dropped)."""
    doc = orjson.loads(text) if text.strip() else {}
    if not isinstance(doc, dict):
        raise ValueError("the mirror config must be a JSON object")
    percent = doc.get("percent", 0)
    if not isinstance(percent, int | float) or isinstance(percent, bool) or not 0 <= percent <= 100:
        raise ValueError(f"'percent' must be a number from 0 to 100, got {percent!r}")
    if percent == 0:
        return None
    url = urlsplit(str(doc.get("url", "")))
    if url.scheme != "http" or not url.hostname:
        raise ValueError(f"'url' must be http://host[:port], got {doc.get('url')!r}")
    examples = doc.get("examples", True)
    if not isinstance(examples, bool):
        raise ValueError("'examples' must be true or false")
    return Target(
        url.hostname, url.port or 80, float(percent), str(doc.get("canary", "")), examples
    )


@dataclass
class CanaryFigures:
    """Counts against one canary version."""

    outcomes: dict[str, int]
    compared: int = 0
    agreeing: int = 0

    @classmethod
    def empty(cls) -> CanaryFigures:
        return cls({o: 0 for o in OUTCOMES})


DELTA_BUCKETS = (*(round(m * 10.0**e, 9) for e in range(-6, 3) for m in (1, 2, 5)), 1000.0)
"""|canary - stable| bucket bounds, 1-2-5 in each decade from 1e-6 to 1000: a quantile read
from them is within a factor of about 2.5 of the true value."""


class MirrorStats:
    """Per canary version: outcomes, compared and agreeing rows, confusion or |delta|."""

    def __init__(self, classifier: bool) -> None:
        self.classifier = classifier
        self.by_canary: dict[str, CanaryFigures] = {}
        self.confusion: dict[str, agreement.Confusion] = {}
        self.deltas: dict[str, npt.NDArray[np.int64]] = {}
        self.delta_sums: dict[str, float] = {}
        self.examples: deque[dict[str, Any]] = deque(maxlen=MAX_EXAMPLES)
        self._edges = np.asarray(DELTA_BUCKETS)

    def figures(self, canary: str) -> CanaryFigures:
        found = self.by_canary.get(canary)
        if found is None:
            while len(self.by_canary) >= MAX_CANARIES:
                oldest = next(iter(self.by_canary))
                for table in (self.by_canary, self.confusion, self.deltas, self.delta_sums):
                    table.pop(oldest, None)
            found = self.by_canary[canary] = CanaryFigures.empty()
        return found

    def outcome(self, canary: str, outcome: str, requests: int) -> None:
        self.figures(canary).outcomes[outcome] += requests

    def compared(self, canary: str, result: agreement.Comparison) -> None:
        figures = self.figures(canary)
        figures.compared += result.rows
        figures.agreeing += result.agreeing
        if self.classifier:
            self.confusion.setdefault(canary, agreement.Confusion()).add(result.pairs)
            return
        index = np.searchsorted(self._edges, result.deltas, side="left")
        counts = np.bincount(index, minlength=len(DELTA_BUCKETS) + 1)
        if canary in self.deltas:
            self.deltas[canary] += counts
        else:
            self.deltas[canary] = counts
        self.delta_sums[canary] = self.delta_sums.get(canary, 0.0) + float(result.deltas.sum())

    def example(self, canary: str, inputs: Any, stable: Any, answer: Any) -> None:
        self.examples.append(
            {
                "time": time.time(),
                "canary": canary,
                "inputs": inputs,
                "stable": stable,
                "canary_answer": answer,
            }
        )


class Batch:
    """Sampled rows waiting for the canary: the rows, the stable answers, requests."""

    def __init__(self) -> None:
        self.rows: list[npt.NDArray[Any]] = []
        self.answers: list[npt.NDArray[Any]] = []
        self.size = 0

    def add(self, rows: npt.NDArray[Any], answers: npt.NDArray[Any]) -> None:
        self.rows.append(rows)
        self.answers.append(answers)
        self.size += len(rows)


def encode(model: str, rows: list[npt.NDArray[Any]]) -> tuple[bytes, bytes, int]:
    """(path, body, JSON header length) of one V2 request carrying every row of `rows`."""
    path = b"/v2/models/%s/infer" % model.encode()
    first = rows[0]
    outputs = [{"name": "predict"}]
    if first.dtype.names is None:
        matrix = np.ascontiguousarray(np.concatenate(rows), dtype="<f8")
        data = matrix.tobytes()
        header = orjson.dumps(
            {
                "inputs": [
                    {
                        "name": "input-0",
                        "datatype": "FP64",
                        "shape": list(matrix.shape),
                        "parameters": {"binary_data_size": len(data)},
                    }
                ],
                "outputs": outputs,
            }
        )
        return path, header + data, len(header)
    inputs = []
    for name in first.dtype.names:
        column = np.concatenate([r[name] for r in rows])
        kind = "FP64" if column.dtype.kind == "f" else "BYTES"
        values = column.tolist() if kind == "FP64" else [str(v) for v in column.tolist()]
        inputs.append({"name": name, "datatype": kind, "shape": [len(values)], "data": values})
    body = orjson.dumps({"inputs": inputs, "outputs": outputs})
    return path, body, 0


class Tee:
    """Copies sampled requests to the target and compares the answers."""

    def __init__(self, model: str, stats: MirrorStats, *, rng: random.Random | None = None) -> None:
        self.model = model
        self.stats = stats
        self.target: Target | None = None
        self._rng = rng or random.Random()
        self._batch = Batch()
        self._timer: asyncio.TimerHandle | None = None
        self._in_flight = 0
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._pool_key: tuple[str, int] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def retarget(self, target: Target | None) -> None:
        if target == self.target:
            return
        log.info(
            "mirror: %s",
            "off"
            if target is None
            else f"{target.percent:g}% to {target.host}:{target.port} ({target.canary})",
        )
        self.target = target
        if target is None or not target.examples:
            self.stats.examples.clear()
        if target is None or (target.host, target.port) != self._pool_key:
            self._close_idle()
            self._pool_key = None if target is None else (target.host, target.port)
        if target is None:
            self._batch = Batch()

    def offer(self, rows: npt.NDArray[Any], answers: npt.NDArray[Any]) -> None:
        """Maybe copy one answered request (its rows and the stable answers)."""
        target = self.target
        if target is None or (target.percent < 100 and self._rng.random() * 100 >= target.percent):
            return
        if self._batch.size + len(rows) > MAX_BUFFERED_ROWS:
            self.stats.outcome(target.canary, DROPPED, 1)
            return
        self._batch.add(rows, answers)
        if self._batch.size >= BATCH_ROWS:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        target = self.target
        if target is None or not self._batch.size:
            return
        if self._in_flight >= MAX_IN_FLIGHT:
            # Sent when one in flight returns; until then the buffer bounds what waits.
            return
        batch, self._batch = self._batch, Batch()
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._send(target, batch))
        self._tasks.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        """A batch is back: send the next at once only when it is full, else when it has
        lingered. Sending whatever waits would pace batches by the canary's round trip
        (hundreds per second of a few rows each), and each costs the stable pod ~0.6 ms."""
        self._tasks.discard(task)
        self._in_flight -= 1
        if self._batch.size >= BATCH_ROWS:
            self._flush()
        elif self._batch.size and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, self._flush)

    async def _send(self, target: Target, batch: Batch) -> None:
        requests = len(batch.rows)
        path, body, header_length = encode(self.model, batch.rows)
        try:
            status, answer = await asyncio.wait_for(
                self._post(target, path, body, header_length), TIMEOUT_SECONDS
            )
        except TimeoutError:
            self.stats.outcome(target.canary, TIMEOUT, requests)
            return
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            self.stats.outcome(target.canary, UNREACHABLE, requests)
            return
        if status != 200:
            self.stats.outcome(target.canary, ERROR, requests)
            return
        self._compare(target, batch, answer)

    def _compare(self, target: Target, batch: Batch, answer: bytes) -> None:
        requests = len(batch.rows)
        try:
            outputs = orjson.loads(answer)["outputs"]
            data = next(o["data"] for o in outputs if o.get("name") == "predict")
        except (orjson.JSONDecodeError, KeyError, TypeError, StopIteration):
            self.stats.outcome(target.canary, MISMATCHED, requests)
            return
        stable = np.concatenate(batch.answers)
        result = agreement.compare(stable, data, classifier=self.stats.classifier)
        if result.mismatched:
            self.stats.outcome(target.canary, MISMATCHED, requests)
            return
        self.stats.outcome(target.canary, COMPARED, requests)
        self.stats.compared(target.canary, result)
        if target.examples and result.disagreeing:
            rows = np.concatenate(batch.rows)
            for i in result.disagreeing:
                row = rows[i]
                inputs = (
                    dict(zip(row.dtype.names, row.tolist(), strict=True))
                    if row.dtype.names
                    else row.tolist()
                )
                self.stats.example(target.canary, inputs, stable[i].item(), data[i])

    async def _post(
        self, target: Target, path: bytes, body: bytes, header_length: int
    ) -> tuple[int, bytes]:
        """One exchange; a kept-alive connection the canary has closed meanwhile is retried
        once on a new one."""
        extra = b"inference-header-content-length: %d\r\n" % header_length if header_length else b""
        request = (
            b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n%s%s: 1\r\n\r\n%s"
            % (path, target.host.encode(), len(body), extra, MIRROR_HEADER, body)
        )
        while True:
            pooled = bool(self._idle)
            reader, writer = (
                self._idle.pop()
                if pooled
                else await asyncio.open_connection(target.host, target.port)
            )
            try:
                writer.write(request)
                status, length, keep = response_head(await reader.readuntil(b"\r\n\r\n"))
                answer = await reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                writer.close()
                if pooled and not getattr(exc, "partial", b""):
                    continue
                raise
            except BaseException:
                writer.close()
                raise
            if keep and (target.host, target.port) == self._pool_key:
                self._idle.append((reader, writer))
            else:
                writer.close()
            return status, answer

    def _close_idle(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


class ConfigWatcher:
    """Reads the mirror file every POLL_SECONDS and retargets the tee when it changed."""

    def __init__(self, path: str, tee: Tee) -> None:
        self.path = path
        self.tee = tee
        self._last: str | None = None
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.poll()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def poll(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            log.warning("mirror: cannot read %s: %s", self.path, exc)
            text = ""
        if text != self._last:
            self._last = text
            try:
                self.tee.retarget(parse_target(text))
            except (ValueError, orjson.JSONDecodeError) as exc:
                log.warning("mirror: %s: %s; mirroring off", self.path, exc)
                self.tee.retarget(None)
        with contextlib.suppress(RuntimeError):
            self._handle = asyncio.get_running_loop().call_later(POLL_SECONDS, self.poll)
