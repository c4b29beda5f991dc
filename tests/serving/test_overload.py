"""Overload over real sockets (issue 15): what cannot be served in time is refused at once.

A model that takes 100 ms a call, one row a batch, and a queueing budget of 150 ms: a
burst of 12 requests on open connections cannot all be answered in time. Those the server
refuses get a 503 with Retry-After and a JSON reason, are counted as shed, and readiness
stays 200. A request whose client has gone is never computed.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import pytest
import requests

from coalmine_serving.batching import DISCONNECTED, EXPIRED, REFUSED
from tests.serving import server as srv
from tests.serving.models import SLOW_SECONDS, SlowModel
from tests.support.cluster import wait_for

BUDGET_MS = 150
BURST = 12
ROW = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}


def serve_slow(root: Path, budget_ms: int) -> Iterator[srv.Server]:
    path = root / "slow.joblib"
    joblib.dump(SlowModel(), path)
    server = srv.start(
        ["--name", "slow", "--uri", str(path), "--allow-unsafe-pickle",
         "--max-batch-size", "1", "--max-queue-ms", str(budget_ms)],
    )  # fmt: skip
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[srv.Server]:
    """The slow model with a budget of BUDGET_MS."""
    yield from serve_slow(tmp_path_factory.mktemp("slow"), BUDGET_MS)


@pytest.fixture(scope="module")
def unbounded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[srv.Server]:
    """The slow model with no budget (--max-queue-ms 0): nothing is refused."""
    yield from serve_slow(tmp_path_factory.mktemp("unbounded"), 0)


def metric(server: srv.Server, name: str, **labels: str) -> float:
    """The value of one series on /metrics (0 when absent)."""
    pattern = re.compile(rf"^{name}\{{([^}}]*)\}} (\S+)$", re.M)
    for found in pattern.finditer(server.get("/metrics").text):
        have = dict(re.findall(r'(\w+)="([^"]*)"', found.group(1)))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(found.group(2))
    return 0.0


def shed(server: srv.Server) -> dict[str, float]:
    return {
        r: metric(server, "coalmine_requests_shed_total", reason=r)
        for r in (REFUSED, EXPIRED, DISCONNECTED)
    }


def infer(server: srv.Server, session: requests.Session | None = None) -> requests.Response:
    post = (session or requests).post
    return post(f"{server.url}/v2/models/slow/infer", json=ROW, timeout=30)


@pytest.fixture
def clients(slow_server: srv.Server) -> Iterator[list[requests.Session]]:
    """Keep-alive connections, opened one by one first, as a load balancer's pool is: the
    server accepts one new connection per loop turn, so a burst of new connections would
    wait in the kernel's accept queue, not in the server's."""
    sessions = [requests.Session() for _ in range(BURST)]
    for session in sessions:
        assert infer(slow_server, session).status_code == 200
    yield sessions
    for session in sessions:
        session.close()


def test_a_burst_beyond_the_budget_is_refused_with_503_and_retry_after(
    slow_server: srv.Server, clients: list[requests.Session]
) -> None:
    before = shed(slow_server)
    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(lambda c: infer(slow_server, c), clients))
        ready = slow_server.get("/v2/health/ready")
    codes = sorted(a.status_code for a in answers)
    assert set(codes) == {200, 503}, codes
    # at most the budget's worth of calls queue behind the first: the rest are refused
    assert codes.count(200) <= 2 + BUDGET_MS / 1000 / SLOW_SECONDS, codes
    for answer in answers:
        if answer.status_code == 503:
            assert int(answer.headers["Retry-After"]) >= 1
            assert answer.headers["Content-Type"] == "application/json"
            assert "--max-queue-ms" in answer.json()["error"], answer.text
    assert ready.status_code == 200, "overload must not turn the pod unready"
    after = shed(slow_server)
    refused = sum(after[r] - before[r] for r in (REFUSED, EXPIRED))
    assert refused == codes.count(503), (before, after)
    assert metric(slow_server, "coalmine_requests_total", code="503", protocol="v2") >= refused


def request_bytes() -> bytes:
    body = json.dumps(ROW).encode()
    return (
        b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


def answered(conn: socket.socket) -> bytes:
    conn.sendall(request_bytes())
    return conn.recv(65536)


def test_a_request_whose_client_left_is_not_computed(unbounded_server: srv.Server) -> None:
    server = unbounded_server
    conns = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
    try:
        for conn in conns:  # connected and accepted before the test proper
            assert answered(conn).startswith(b"HTTP/1.1 200")
        batches = metric(server, "coalmine_batch_size_count")
        before = shed(server)[DISCONNECTED]
        first, second, gone = conns
        for conn in conns:
            conn.sendall(request_bytes())
        gone.close()  # queued behind two 100 ms calls, its client gives up
        assert first.recv(65536).startswith(b"HTTP/1.1 200")
        assert second.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        for conn in conns:
            conn.close()
    wait_for("the abandoned request to be dropped",
             lambda: shed(server)[DISCONNECTED] == before + 1, timeout=10)  # fmt: skip
    assert metric(server, "coalmine_batch_size_count") == batches + 2


def test_a_budget_of_zero_queues_everything(unbounded_server: srv.Server) -> None:
    before = shed(unbounded_server)
    with ThreadPoolExecutor(6) as pool:
        codes = [a.status_code for a in pool.map(lambda _: infer(unbounded_server), range(6))]
    assert codes == [200] * 6
    assert shed(unbounded_server) == before
