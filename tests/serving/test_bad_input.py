"""Every client mistake gets a 4xx with a JSON error naming it; the server stays up."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.serving import server as srv
from tests.serving.conftest import N_FEATURES, Artifacts
from tests.serving.models import POISON

ROW = [0.5] * N_FEATURES


def tensor(data: object, shape: list[int], datatype: str = "FP64") -> dict[str, object]:
    return {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": data}]}


NAN_BODY = b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [NaN]}]}'
NO_DATA = {"inputs": [{"name": "x", "shape": [1, 20], "datatype": "FP64"}]}
NO_SHAPE = {"inputs": [{"name": "x", "datatype": "FP64", "data": ROW}]}
UNEVEN_COLUMNS = {
    "inputs": [
        {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
        {"name": "b", "shape": [1], "datatype": "FP64", "data": [1.0]},
    ]
}
FEATURES_MSG = "expected 20 features per row, got "

V2_CASES = [
    ("malformed-json", b'{"inputs": [', 400, "malformed JSON"),
    ("not-an-object", b"[1, 2]", 400, "must be a JSON object"),
    ("nan-literal", NAN_BODY, 400, "NaN or infinity"),
    ("missing-inputs", {"id": "1"}, 400, "missing inputs"),
    ("empty-inputs", {"inputs": []}, 400, "missing inputs"),
    ("input-not-object", {"inputs": [5]}, 400, "must be an object"),
    ("no-data", NO_DATA, 400, "has no 'data'"),
    ("no-shape", NO_SHAPE, 400, "needs 'shape'"),
    ("shape-mismatch", tensor(ROW, [2, N_FEATURES]), 400, "needs 40 values, got 20"),
    ("wrong-rank", tensor(ROW, [N_FEATURES]), 400, "1-D array"),
    ("too-few-features", tensor(ROW[:-1], [1, 19]), 400, FEATURES_MSG + "19"),
    ("too-many-features", tensor([*ROW, 1.0], [1, 21]), 400, FEATURES_MSG + "21"),
    ("unknown-datatype", tensor(ROW, [1, N_FEATURES], "FLOAT"), 400, "unknown datatype 'FLOAT'"),
    ("bytes-datatype", tensor(["a"] * 20, [1, 20], "BYTES"), 400,
     "input 'x' is BYTES, but the model takes numbers"),
    ("bytes-not-strings", tensor([1] * 20, [1, 20], "BYTES"), 400, "BYTES data must be strings"),
    ("int8-overflow", tensor([1000] + [0] * 19, [1, N_FEATURES], "INT8"), 400,
     "input 'x': value 1000 is outside INT8's range [-128, 127]"),
    ("uint-negative", tensor([-1] * 20, [1, N_FEATURES], "UINT16"), 400,
     "value -1 is outside UINT16's range [0, 65535]"),
    ("int64-overflow", tensor([2**63] * 20, [1, N_FEATURES], "INT64"), 400,
     "outside INT64's range"),
    ("fp16-overflow", tensor([7e4, *ROW[1:]], [1, N_FEATURES], "FP16"), 400,
     "value 70000.0 is outside FP16's range [-65504.0, 65504.0]"),
    ("fp32-overflow", tensor([-1e39, *ROW[1:]], [1, N_FEATURES], "FP32"), 400,
     "value -1e+39 is outside FP32's range"),
    ("booleans-as-fp", tensor([True] * 20, [1, N_FEATURES]), 400,
     "input 'x': data does not match datatype FP64"),
    ("numbers-as-bool", tensor([1] * 20, [1, N_FEATURES], "BOOL"), 400,
     "does not match datatype BOOL"),
    ("strings-as-fp", tensor(["0.5"] * N_FEATURES, [1, N_FEATURES]), 400, "non-numeric"),
    ("floats-as-int", tensor(ROW, [1, N_FEATURES], "INT64"), 400, "does not match datatype INT64"),
    ("nulls", tensor([None, *ROW[1:]], [1, N_FEATURES]), 400, "nulls"),
    ("ragged", tensor([ROW, ROW[:3]], [2, N_FEATURES]), 400, "ragged"),
    ("data-not-list", tensor(0.5, [1, 1]), 400, "must be a list"),
    ("empty-batch", tensor([], [0, N_FEATURES]), 400, "empty batch"),
    ("huge-value", tensor([1e300, *ROW[1:]], [1, N_FEATURES]), 400, "out of range"),
    ("too-many-rows", tensor([ROW] * 101, [101, N_FEATURES]), 413, "too many rows: 101 > 100"),
    (
        "unknown-output",
        {**tensor(ROW, [1, N_FEATURES]), "outputs": [{"name": "proba"}]},
        400,
        "unknown output 'proba'",
    ),
    ("columns-of-different-length", UNEVEN_COLUMNS, 400, "same number of rows"),
    ("outputs-not-list", {**tensor(ROW, [1, N_FEATURES]), "outputs": "predict"}, 400, "a list"),
    ("output-not-object", {**tensor(ROW, [1, N_FEATURES]), "outputs": ["predict"]}, 400,
     "must be an object with a 'name'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "message"), [c[1:] for c in V2_CASES], ids=[c[0] for c in V2_CASES]
)
def test_v2_bad_input(lr_server: srv.Server, body: object, status: int, message: str) -> None:
    if isinstance(body, bytes):
        response = lr_server.post("/v2/models/lr/infer", data=body)
    else:
        response = lr_server.post("/v2/models/lr/infer", body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert message in response.json()["error"]


V1_CASES = [
    ("missing-instances", {"rows": [ROW]}, 400, "missing inputs"),
    ("instances-not-list", {"instances": {"a": 1}}, 400, "must be a list"),
    ("too-few-features", {"instances": [ROW[:5]]}, 400, "expected 20 features per row, got 5"),
    ("empty-batch", {"instances": []}, 400, "1-D array"),
    ("flat-row", {"instances": ROW}, 400, "1-D array"),
    ("nan", b'{"instances": [[NaN]]}', 400, "NaN or infinity"),
    ("infinity-overflow", b'{"instances": [[1e999' + b", 0" * 19 + b"]]}", 400, "NaN or infinity"),
    ("parameters-not-object", {"instances": [ROW], "parameters": []}, 400, "must be an object"),
    ("unknown-output", {"instances": [ROW], "parameters": {"output": "proba"}}, 400,
     "unknown output 'proba'; this model provides 'predict', 'predict_proba'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "message"), [c[1:] for c in V1_CASES], ids=[c[0] for c in V1_CASES]
)
def test_v1_bad_input(lr_server: srv.Server, body: object, status: int, message: str) -> None:
    if isinstance(body, bytes):
        response = lr_server.post("/v1/models/lr:predict", data=body)
    else:
        response = lr_server.post("/v1/models/lr:predict", body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("POST", "/v2/models/nope/infer", 404, "model 'nope' not found"),
        ("POST", "/v2/models/lr/versions/9/infer", 404, "has no version '9'"),
        ("GET", "/v2/models/nope", 404, "model 'nope' not found"),
        ("GET", "/v2/models/lr/versions/9", 404, "has no version '9'"),
        ("GET", "/v2/models/lr/versions/9/ready", 404, "has no version '9'"),
        ("POST", "/v1/models/nope:predict", 404, "model 'nope' not found"),
        ("GET", "/v1/models/nope", 404, "model 'nope' not found"),
        ("GET", "/v2/models/lr/infer", 405, "use POST"),
        ("GET", "/v1/models/lr:predict", 405, "use POST"),
        ("GET", "/nowhere", 404, "no endpoint at /nowhere"),
        ("DELETE", "/v2/health/live", 405, "not allowed"),
    ],
)
def test_unknown_models_versions_and_routes(
    lr_server: srv.Server, method: str, path: str, status: int, message: str
) -> None:
    response = lr_server.session.request(method, lr_server.url + path, json={}, timeout=10)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_oversized_body_is_413(lr_server: srv.Server) -> None:
    body = tensor([ROW] * 1000, [1000, N_FEATURES])  # about 200 kB > --max-body-bytes 65536
    response = lr_server.post("/v2/models/lr/infer", body)
    assert response.status_code == 413
    assert "larger than 65536 bytes" in response.json()["error"]
    assert lr_server.get("/v2/health/ready").status_code == 200


def test_malformed_http_is_400_and_server_survives(lr_server: srv.Server) -> None:
    with socket.create_connection(("127.0.0.1", lr_server.port), timeout=5) as conn:
        conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        reply = conn.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400")
    assert b"malformed HTTP request" in reply
    assert lr_server.get("/v2/health/live").status_code == 200


def test_model_exception_is_500_and_counted(failing_server: srv.Server) -> None:
    poisoned = {"instances": [[POISON, 0.0, 0.0]]}
    response = failing_server.post("/v1/models/failing:predict", poisoned)
    assert response.status_code == 500
    assert "poisoned row" in response.json()["error"]
    ok = failing_server.post("/v1/models/failing:predict", {"instances": [[1.0, 2.0, 3.0]]})
    assert ok.json()["predictions"] == [0]
    metrics = failing_server.get("/metrics").text
    assert 'coalmine_request_errors_total{code="500",model="failing",protocol="v1"' in metrics


def test_a_failing_request_does_not_fail_its_batch(failing_server: srv.Server) -> None:
    """Concurrent requests share a batch; only the poisoned one gets the 500."""
    rows = [[[POISON if i == 3 else i / 100, 0.0, 0.0]] for i in range(16)]
    with ThreadPoolExecutor(16) as pool:
        statuses = list(
            pool.map(
                lambda r: (
                    srv.requests.post(
                        failing_server.url + "/v1/models/failing:predict",
                        json={"instances": r},
                        timeout=10,
                    ).status_code
                ),
                rows,
            )
        )
    assert statuses == [500 if i == 3 else 200 for i in range(16)]


def test_server_still_answers_after_the_matrix(lr_server: srv.Server, artifacts: Artifacts) -> None:
    rows = np.asarray([ROW])
    body = lr_server.post("/v1/models/lr:predict", {"instances": rows.tolist()}).json()
    assert body["predictions"] == artifacts.lr.predict(rows).tolist()
