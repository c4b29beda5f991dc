"""The tee of shadow steps between two real servers on loopback: a stable pod answers its
clients, copies a share of their rows to the canary and compares the answers."""

from __future__ import annotations

import copy
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
import skops.io

from tests.serving import server as srv
from tests.serving.conftest import Artifacts
from tests.serving.grpc_v2 import infer, to_proto
from tests.serving.models import SwappedLabels
from tests.support.metrics import parse, total


def mirror_file(
    path: Path, port: int, percent: float, *, canary: str = "v2", examples: bool = True
) -> None:
    doc = {
        "url": f"http://127.0.0.1:{port}",
        "percent": percent,
        "canary": canary,
        "examples": examples,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)  # atomic, as the kubelet swaps a ConfigMap's files


def stable_server(artifacts: Artifacts, config: Path) -> srv.Server:
    return srv.start(
        ["--name", "lr", "--uri", artifacts.lr_skops.as_uri(), "--mirror-config", str(config)],
        {"COALMINE_MODEL_VERSION": "v1", "COALMINE_VARIANT": "stable"},
        grpc=False,
    )


def canary_server(uri: str, *extra: str) -> srv.Server:
    return srv.start(
        ["--name", "lr", "--uri", uri, *extra],
        {"COALMINE_MODEL_VERSION": "v2", "COALMINE_VARIANT": "canary"},
        grpc=False,
    )


def metric(server: srv.Server, name: str, **labels: str) -> float:
    return total(parse(server.get("/metrics").text), name, **labels)


def send(server: srv.Server, x: np.ndarray, requests: int, rows: int = 3) -> int:
    """`requests` V2 requests of `rows` rows each; every one must be answered 200."""
    for i in range(requests):
        chunk = x[(i * rows) % (len(x) - rows) :][:rows]
        body = {
            "inputs": [
                {
                    "name": "x",
                    "shape": list(chunk.shape),
                    "datatype": "FP64",
                    "data": chunk.ravel().tolist(),
                }
            ]
        }
        answer = server.post("/v2/models/lr/infer", body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == "v1"
    return requests * rows


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "mirror.json"


@pytest.fixture(scope="module")
def swapped_uri(artifacts: Artifacts, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("swapped") / "swapped.joblib"
    joblib.dump(SwappedLabels(artifacts.lr), path)
    return str(path)


def test_every_row_of_a_same_model_canary_agrees(artifacts: Artifacts, config: Path) -> None:
    canary = canary_server(artifacts.lr_skops.as_uri())
    mirror_file(config, canary.port, 100)
    stable = stable_server(artifacts, config)
    try:
        rows = send(stable, artifacts.x, 40)
        srv.eventually(
            lambda: metric(stable, "coalmine_mirror_compared_rows_total", canary="v2") == rows,
            f"{rows} rows compared",
        )
        assert metric(stable, "coalmine_mirror_agreeing_rows_total", canary="v2") == rows
        assert metric(stable, "coalmine_mirror_requests_total", outcome="compared") == 40
        # The canary counts the copies apart: under protocol "mirror", never in latency.
        assert metric(canary, "coalmine_requests_total", protocol="mirror", code="200") >= 1
        assert metric(canary, "coalmine_requests_total", protocol="v2") == 0
        assert metric(canary, "coalmine_request_duration_seconds_count") == 0
        assert metric(canary, "coalmine_predictions_total") == rows
        assert stable.get("/v2/models/lr/mirror").json()["examples"] == []
    finally:
        stable.stop()
        canary.stop()


def test_a_label_swapping_canary_disagrees_on_every_row_and_shows_examples(
    artifacts: Artifacts, config: Path, swapped_uri: str
) -> None:
    canary = canary_server(swapped_uri, "--allow-unsafe-pickle")
    mirror_file(config, canary.port, 100)
    stable = stable_server(artifacts, config)
    try:
        rows = send(stable, artifacts.x, 30)
        srv.eventually(
            lambda: metric(stable, "coalmine_mirror_compared_rows_total") == rows, "rows compared"
        )
        assert metric(stable, "coalmine_mirror_agreeing_rows_total") == 0
        confusion = parse(stable.get("/metrics").text)
        assert (
            total(confusion, "coalmine_mirror_confusion_total", stable_class="0", canary_class="1")
            > 0
        )
        assert (
            total(confusion, "coalmine_mirror_confusion_total", stable_class="0", canary_class="0")
            == 0
        )
        report = stable.get("/v2/models/lr/mirror").json()
        example = report["examples"][0]
        assert len(example["inputs"]) == 20
        assert example["stable"] != example["canary_answer"]
        assert report["canaries"]["v2"]["agreeing"] == 0
        confusion = {(s, c): n for s, c, n in report["canaries"]["v2"]["confusion"]}
        assert sum(confusion.values()) == rows
        assert set(confusion) <= {("0", "1"), ("1", "0")}
        mirror_file(config, canary.port, 100, examples=False)  # privacy: the examples go
        srv.eventually(
            lambda: stable.get("/v2/models/lr/mirror").json()["examples"] == [], "examples cleared"
        )
    finally:
        stable.stop()
        canary.stop()


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        body = b'{"error":"boom"}'
        self.send_response(500)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def failing_canary() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


def test_a_canary_answering_500_or_gone_fails_no_client_request(
    artifacts: Artifacts, config: Path, failing_canary: int
) -> None:
    mirror_file(config, failing_canary, 100)
    stable = stable_server(artifacts, config)
    try:
        send(stable, artifacts.x, 20)  # asserts every client answer is a 200 from v1
        srv.eventually(
            lambda: metric(stable, "coalmine_mirror_requests_total", outcome="error") == 20,
            "20 mirrored requests answered 500",
        )
        mirror_file(config, srv.free_port(), 100, canary="v3")  # nobody listens there
        srv.eventually(
            lambda: stable.get("/v2/models/lr/mirror").json()["target"]["canary"] == "v3",
            "retargeted",
        )
        send(stable, artifacts.x, 20)
        srv.eventually(
            lambda: (
                metric(stable, "coalmine_mirror_requests_total", canary="v3", outcome="unreachable")
                == 20
            ),
            "20 mirrored requests unreachable",
        )
        assert metric(stable, "coalmine_mirror_compared_rows_total") == 0
        assert metric(stable, "coalmine_request_errors_total") == 0
    finally:
        stable.stop()


def test_a_share_mirrors_about_that_share_and_no_file_mirrors_nothing(
    artifacts: Artifacts, config: Path
) -> None:
    canary = canary_server(artifacts.lr_skops.as_uri())
    stable = stable_server(artifacts, config)  # no file yet
    try:
        send(stable, artifacts.x, 50, rows=1)
        assert stable.get("/v2/models/lr/mirror").json()["target"] is None
        assert metric(stable, "coalmine_mirror_requests_total") == 0
        mirror_file(config, canary.port, 20)
        srv.eventually(
            lambda: stable.get("/v2/models/lr/mirror").json()["target"] is not None, "target read"
        )
        send(stable, artifacts.x, 400, rows=1)
        srv.eventually(
            lambda: (
                metric(stable, "coalmine_mirror_requests_total", outcome="compared")
                == metric(stable, "coalmine_mirror_compared_rows_total")
            ),
            "every sampled request compared",
        )
        mirrored = metric(stable, "coalmine_mirror_compared_rows_total")
        assert 40 <= mirrored <= 125, mirrored  # 20% of 400 is 80; binomial sd 8
    finally:
        stable.stop()
        canary.stop()


def test_a_regressor_off_by_a_constant_shows_that_constant_as_its_delta(
    artifacts: Artifacts, config: Path, tmp_path: Path
) -> None:
    shifted = copy.deepcopy(artifacts.reg)
    shifted.intercept_ = shifted.intercept_ + 0.25
    path = tmp_path / "shifted.skops"
    skops.io.dump(shifted, path)
    canary = canary_server(path.as_uri())
    mirror_file(config, canary.port, 100)
    stable = srv.start(
        ["--name", "lr", "--uri", artifacts.reg_skops.as_uri(), "--mirror-config", str(config)],
        {"COALMINE_MODEL_VERSION": "v1", "COALMINE_VARIANT": "stable"},
        grpc=False,
    )
    try:
        x = np.random.default_rng(0).normal(size=(64, 4))
        rows = send(stable, x, 20)
        srv.eventually(
            lambda: metric(stable, "coalmine_mirror_compared_rows_total") == rows, "rows compared"
        )
        series = parse(stable.get("/metrics").text)
        assert total(series, "coalmine_mirror_agreeing_rows_total") == 0
        # Every |delta| is 0.25: none at or below 0.2, all at or below 0.5.
        assert total(series, "coalmine_mirror_delta_bucket", le="0.2") == 0
        assert total(series, "coalmine_mirror_delta_bucket", le="0.5") == rows
        assert total(series, "coalmine_mirror_delta_sum") == pytest.approx(0.25 * rows)
    finally:
        stable.stop()
        canary.stop()


def test_grpc_requests_are_copied_too(artifacts: Artifacts, config: Path) -> None:
    canary = canary_server(artifacts.lr_skops.as_uri())
    mirror_file(config, canary.port, 100)
    stable = srv.start(
        ["--name", "lr", "--uri", artifacts.lr_skops.as_uri(), "--mirror-config", str(config)],
        {"COALMINE_MODEL_VERSION": "v1", "COALMINE_VARIANT": "stable"},
    )
    try:
        srv.eventually(
            lambda: stable.get("/v2/models/lr/mirror").json()["target"] is not None, "read"
        )
        rows = artifacts.x[:5]
        tensor = {"name": "x", "shape": [5, 20], "datatype": "FP64", "data": rows.ravel().tolist()}
        for _ in range(10):
            infer(stable, to_proto({"inputs": [tensor]}, "lr"))
        srv.eventually(
            lambda: metric(stable, "coalmine_mirror_compared_rows_total") == 50, "50 rows compared"
        )
        assert metric(stable, "coalmine_mirror_agreeing_rows_total") == 50
        assert metric(stable, "coalmine_requests_total", protocol="grpc") == 10
    finally:
        stable.stop()
        canary.stop()
