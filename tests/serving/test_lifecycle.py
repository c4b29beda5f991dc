"""Readiness and graceful shutdown: SIGTERM under load loses no request."""

from __future__ import annotations

import signal
import threading
import time

import requests

from tests.serving import server as srv
from tests.serving.conftest import Artifacts

CLIENTS = 8


def test_sigterm_under_load_fails_no_request(artifacts: Artifacts) -> None:
    server = srv.start(["--name", "lr", "--uri", str(artifacts.lr_skops)], drain_seconds=4.0)
    stop = threading.Event()
    ok = [0] * CLIENTS
    failures: list[str] = []
    rows = artifacts.x[:50].tolist()

    def client(i: int) -> None:
        with requests.Session() as session:
            n = 0
            while not stop.is_set():
                body = {"instances": [rows[n % len(rows)]]}
                n += 1
                try:
                    r = session.post(server.url + "/v1/models/lr:predict", json=body, timeout=10)
                    if r.status_code == 200:
                        ok[i] += 1
                    else:
                        failures.append(f"{r.status_code} {r.text}")
                except requests.RequestException as exc:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 10
        while sum(ok) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sum(ok) >= 200, "load did not get going"
        server.process.send_signal(signal.SIGTERM)
        sent_at = time.monotonic()
        # Unready at once, while inference keeps working during the drain period.
        while requests.get(server.url + "/v2/health/ready", timeout=2).status_code != 503:
            assert time.monotonic() - sent_at < 2.0, "still ready 2s after SIGTERM"
            time.sleep(0.01)
        served_before = sum(ok)
        while sum(ok) < served_before + 100:
            assert time.monotonic() - sent_at < 3.5, "requests stalled during the drain"
            time.sleep(0.01)
    finally:
        stop.set()  # the endpoint is gone from the load balancer before the drain ends
        for t in threads:
            t.join(timeout=20)
    assert failures == []
    assert server.process.wait(timeout=20) == 0
    assert time.monotonic() - sent_at >= 4.0, "exited before the drain period ended"


def test_sigterm_finishes_a_request_in_flight_on_a_kept_alive_connection(
    artifacts: Artifacts,
) -> None:
    server = srv.start(["--name", "lr", "--uri", str(artifacts.lr_skops)], drain_seconds=2.0)
    session = requests.Session()
    assert session.post(server.url + "/v1/models/lr:predict", json={"instances": [[0.0] * 20]}).ok
    server.process.send_signal(signal.SIGTERM)
    # The kept-alive connection still works during the drain ...
    response = session.post(server.url + "/v1/models/lr:predict", json={"instances": [[1.0] * 20]})
    assert response.status_code == 200
    # ... and the process exits cleanly once it is over.
    assert server.process.wait(timeout=20) == 0
    session.close()


def test_workers_share_the_port_and_all_exit_on_sigterm(artifacts: Artifacts) -> None:
    server = srv.start(["--name", "lr", "--uri", str(artifacts.lr_skops), "--workers", "2"])
    try:
        for _ in range(20):  # new connections are spread over both workers
            r = requests.post(
                server.url + "/v1/models/lr:predict", json={"instances": [[0.0] * 20]}, timeout=10
            )
            assert r.status_code == 200
    finally:
        server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=20) == 0
