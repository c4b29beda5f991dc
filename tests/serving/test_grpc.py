"""OIP V2 over gRPC beside REST: health, metadata, the same answers, metrics and drain."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from coalmine_serving.oip import inference_pb2 as pb
from tests.serving import server as srv
from tests.serving.conftest import N_FEATURES, Artifacts
from tests.serving.grpc_v2 import infer, outputs, stub, to_proto
from tests.serving.pipelines import frame, per_column

EXACT = {"rtol": 0, "atol": 1e-12}
BOTH = [{"name": "predict"}, {"name": "predict_proba"}]
DRAIN_SECONDS = 3.0


def matrix(rows: np.ndarray) -> dict:
    return {"id": "7", "outputs": BOTH, "inputs": [
        {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
         "data": rows.ravel().tolist()}]}  # fmt: skip


def rest_outputs(server: srv.Server, model: str, body: dict) -> dict[str, np.ndarray]:
    response = server.post(f"/v2/models/{model}/infer", body)
    assert response.status_code == 200, response.text
    return {
        out["name"]: np.reshape(np.asarray(out["data"]), out["shape"])
        for out in response.json()["outputs"]
    }


def test_health(lr_server: srv.Server) -> None:
    with stub(lr_server) as client:
        assert client.ServerLive(pb.ServerLiveRequest(), timeout=10).live
        assert client.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        for version in ["", "7"]:
            ask = pb.ModelReadyRequest(name="lr", version=version)
            assert client.ModelReady(ask, timeout=10).ready


def test_server_metadata_is_rests(lr_server: srv.Server) -> None:
    with stub(lr_server) as client:
        meta = client.ServerMetadata(pb.ServerMetadataRequest(), timeout=10)
    assert {"name": meta.name, "version": meta.version, "extensions": list(meta.extensions)} == (
        lr_server.get("/v2").json()
    )


def tensors(meta: pb.ModelMetadataResponse, which: str) -> list[tuple[str, str, list[int]]]:
    return [(t.name, t.datatype, list(t.shape)) for t in getattr(meta, which)]


def test_model_metadata(lr_server: srv.Server) -> None:
    with stub(lr_server) as client:
        meta = client.ModelMetadata(pb.ModelMetadataRequest(name="lr", version="7"), timeout=10)
    assert (meta.name, list(meta.versions), meta.platform) == ("lr", ["7"], "sklearn")
    assert tensors(meta, "inputs") == [("input-0", "FP64", [-1, N_FEATURES])]
    assert tensors(meta, "outputs") == [
        ("predict", "INT64", [-1]),
        ("predict_proba", "FP64", [-1, 2]),
    ]


def test_model_metadata_names_the_pipelines_inputs(pipeline_server: srv.Server) -> None:
    with stub(pipeline_server) as client:
        meta = client.ModelMetadata(pb.ModelMetadataRequest(name="p"), timeout=10)
    rest = pipeline_server.get("/v2/models/p").json()["inputs"]
    assert tensors(meta, "inputs") == [(t["name"], t["datatype"], t["shape"]) for t in rest]
    assert [t[:2] for t in tensors(meta, "inputs")][:2] == [("colour", "BYTES"), ("size", "FP64")]


@pytest.mark.parametrize("raw", [False, True], ids=["contents", "raw"])
@pytest.mark.parametrize("name", ["lr", "rf"])
def test_the_same_answers_as_rest(
    request: pytest.FixtureRequest, artifacts: Artifacts, name: str, raw: bool
) -> None:
    server: srv.Server = request.getfixturevalue(f"{name}_server")
    model, rows = getattr(artifacts, name), artifacts.x[:16]
    response = infer(server, to_proto(matrix(rows), name, raw=raw))
    got = outputs(response)
    assert (response.model_name, response.id) == (name, "7")
    assert got["predict"].tolist() == model.predict(rows).tolist()
    np.testing.assert_allclose(got["predict_proba"], model.predict_proba(rows), **EXACT)
    rest = rest_outputs(server, name, matrix(rows))
    assert got["predict"].tolist() == rest["predict"].tolist()
    np.testing.assert_array_equal(got["predict_proba"], rest["predict_proba"])
    classes = response.outputs[1].parameters["classes"].string_param
    assert json.loads(classes) == [str(c) for c in model.classes_]


def test_labels_only_by_default(lr_server: srv.Server, artifacts: Artifacts) -> None:
    body = {**matrix(artifacts.x[:3]), "outputs": []}
    response = infer(lr_server, to_proto(body, "lr"))
    assert [o.name for o in response.outputs] == ["predict"]
    assert outputs(response)["predict"].tolist() == artifacts.lr.predict(artifacts.x[:3]).tolist()


@pytest.mark.parametrize("raw", [False, True], ids=["contents", "raw"])
def test_named_string_columns_in_any_order(
    pipeline_server: srv.Server, pipeline: tuple[Pipeline, Path], raw: bool
) -> None:
    model, data = pipeline[0], frame(40, 1)
    body = per_column(data, ["count", "colour", "size"], "predict", "predict_proba")
    got = outputs(infer(pipeline_server, to_proto(body, "p", raw=raw)))
    assert got["predict"].tolist() == model.predict(data).tolist()
    np.testing.assert_allclose(got["predict_proba"], model.predict_proba(data), **EXACT)
    rest = rest_outputs(pipeline_server, "p", body)
    assert got["predict"].tolist() == rest["predict"].tolist()


def test_requests_are_counted_under_protocol_grpc(artifacts: Artifacts) -> None:
    server = srv.start(["--name", "lr", "--uri", str(artifacts.lr_skops), "--max-rows", "4"])
    try:
        for i in range(3):
            infer(server, to_proto(matrix(artifacts.x[i : i + 2]), "lr"))
        with pytest.raises(grpc.RpcError):
            infer(server, to_proto(matrix(artifacts.x[:5]), "lr"))
        with stub(server) as client:  # health is not counted
            client.ServerReady(pb.ServerReadyRequest(), timeout=10)
        metrics = server.get("/metrics").text
    finally:
        server.stop()
    labels = 'model="lr",protocol="grpc",variant="",version="1"'
    assert f'coalmine_requests_total{{code="200",{labels}}} 3.0' in metrics
    assert f'coalmine_requests_total{{code="413",{labels}}} 1.0' in metrics
    assert f'coalmine_request_errors_total{{code="413",{labels}}} 1.0' in metrics
    assert f"coalmine_request_duration_seconds_count{{{labels}}} 4.0" in metrics
    assert 'coalmine_predictions_total{class="' in metrics


def test_unready_over_grpc_during_the_drain_then_gone(artifacts: Artifacts) -> None:
    server = srv.start(
        ["--name", "lr", "--uri", str(artifacts.lr_skops)], drain_seconds=DRAIN_SECONDS
    )
    with stub(server) as client:
        server.process.send_signal(signal.SIGTERM)
        sent_at = time.monotonic()
        while client.ServerReady(pb.ServerReadyRequest(), timeout=2).ready:
            assert time.monotonic() - sent_at < 2.0, "still ready 2s after SIGTERM"
            time.sleep(0.01)
        assert not client.ModelReady(pb.ModelReadyRequest(name="lr"), timeout=2).ready
        # Inference still works while load balancers drop the endpoint ...
        response = client.ModelInfer(to_proto(matrix(artifacts.x[:2]), "lr"), timeout=5)
        assert (
            outputs(response)["predict"].tolist() == artifacts.lr.predict(artifacts.x[:2]).tolist()
        )
        assert time.monotonic() - sent_at < DRAIN_SECONDS
        # ... and the port closes with the process, after the drain.
        assert server.process.wait(timeout=20) == 0
        assert time.monotonic() - sent_at >= DRAIN_SECONDS
    with stub(server) as client, pytest.raises(grpc.RpcError) as gone:
        client.ServerLive(pb.ServerLiveRequest(), timeout=2)
    assert gone.value.code() == grpc.StatusCode.UNAVAILABLE


def test_workers_each_serve_grpc_on_the_shared_port(artifacts: Artifacts) -> None:
    server = srv.start(["--name", "lr", "--uri", str(artifacts.lr_skops), "--workers", "2"])
    try:
        for _ in range(20):  # a new channel per call: connections spread over the workers
            response = infer(server, to_proto(matrix(artifacts.x[:1]), "lr"))
            assert (
                outputs(response)["predict"].tolist()
                == artifacts.lr.predict(artifacts.x[:1]).tolist()
            )
        # A scrape reaches one worker: fewer than all 20 there means the other served the rest.
        metrics = server.get("/metrics").text
        assert 0 < grpc_count(metrics) < 20, metrics
    finally:
        server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=20) == 0


def grpc_count(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith('coalmine_requests_total{code="200"') and 'protocol="grpc"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on, from /proc (state 0A is LISTEN)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:  # closed since the listing: not a listener
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.mark.parametrize("grpc_on", [True, False], ids=["grpc", "port-0"])
def test_the_ports_it_listens_on(artifacts: Artifacts, grpc_on: bool) -> None:
    server = srv.start(["--name", "lr", "--uri", str(artifacts.lr_skops)], grpc=grpc_on)
    try:
        expected = {server.port, server.grpc_port} if grpc_on else {server.port}
        ports = listening_ports(server.process.pid)
        assert expected < ports
        assert len(ports - expected) == 1  # the private port of feedback sent on by peers
    finally:
        server.stop()


def test_a_taken_grpc_port_fails_the_start_in_one_line(artifacts: Artifacts) -> None:
    with srv.socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, stderr = srv.run_to_exit(
            ["--name", "lr", "--uri", str(artifacts.lr_skops), "--grpc-port", str(port)]
        )
    assert code == 1
    assert (
        stderr.strip()
        .splitlines()[-1]
        .startswith(f"coalmine-serve: cannot listen on 127.0.0.1:{port} (gRPC)")
    )
