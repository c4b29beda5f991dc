"""The binary tensor data extension: Triton's HTTP client with its defaults, and bad lengths."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
import requests

from tests.serving import server as srv
from tests.serving.conftest import N_FEATURES, Artifacts
from tests.serving.peer_venv import TRITON, python_with, run

# Binary inputs (set_data_from_numpy's default) and binary outputs (infer's default).
TRITON_CLIENT = """
import json, sys
import numpy as np
import tritonclient.http as http
url, model, outputs = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = np.asarray(json.load(sys.stdin), dtype=np.float64)
client = http.InferenceServerClient(url)
assert client.is_server_live() and client.is_model_ready(model)
tensor = http.InferInput("input-0", list(rows.shape), "FP64")
tensor.set_data_from_numpy(rows)
asked = [http.InferRequestedOutput(name) for name in outputs] or None
result = client.infer(model, [tensor], outputs=asked)
print(json.dumps({name: result.as_numpy(name).tolist() for name in outputs or ["predict"]}))
"""


def triton_infer(server: srv.Server, model: str, rows: np.ndarray, *outputs: str) -> dict:
    python = python_with(*TRITON)
    url = f"127.0.0.1:{server.port}"
    result: dict = json.loads(
        run(python, TRITON_CLIENT, url, model, *outputs, stdin=json.dumps(rows.tolist()))
    )
    return result


@pytest.mark.parametrize("name", ["lr", "rf"])
def test_tritons_http_client_gets_the_models_answers(
    request: pytest.FixtureRequest, artifacts: Artifacts, name: str
) -> None:
    server: srv.Server = request.getfixturevalue(f"{name}_server")
    model, rows = getattr(artifacts, name), artifacts.x[:16]
    assert triton_infer(server, name, rows) == {"predict": model.predict(rows).tolist()}
    both = triton_infer(server, name, rows, "predict", "predict_proba")
    assert both["predict"] == model.predict(rows).tolist()
    np.testing.assert_allclose(both["predict_proba"], model.predict_proba(rows), rtol=0, atol=1e-12)


def post_binary(
    server: srv.Server, header: dict, data: bytes, header_length: int | str | None = None
) -> requests.Response:
    head = orjson.dumps(header)
    length = len(head) if header_length is None else header_length
    return server.session.post(
        server.url + "/v2/models/lr/infer",
        data=head + data,
        headers={"Inference-Header-Content-Length": str(length)},
        timeout=10,
    )


def binary_input(rows: int, size: int, datatype: str = "FP64") -> dict:
    return {"name": "x", "shape": [rows, N_FEATURES], "datatype": datatype,
            "parameters": {"binary_data_size": size}}  # fmt: skip


def test_binary_input_and_a_json_output(lr_server: srv.Server, artifacts: Artifacts) -> None:
    rows = artifacts.x[:3]
    raw = rows.astype("<f4").tobytes()
    response = post_binary(lr_server, {"inputs": [binary_input(3, len(raw), "FP32")]}, raw)
    assert response.status_code == 200, response.text
    assert "inference-header-content-length" not in response.headers
    expected = artifacts.lr.predict(rows.astype(np.float32).astype(np.float64))
    assert response.json()["outputs"][0]["data"] == expected.tolist()


def test_binary_output_per_output(lr_server: srv.Server, artifacts: Artifacts) -> None:
    rows = artifacts.x[:4]
    raw = rows.tobytes()
    header = {
        "inputs": [binary_input(4, len(raw))],
        "outputs": [{"name": "predict_proba", "parameters": {"binary_data": True}},
                    {"name": "predict"}],
    }  # fmt: skip
    response = post_binary(lr_server, header, raw)
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    doc = json.loads(response.content[:length])
    proba, labels = doc["outputs"]
    assert proba["parameters"]["binary_data_size"] == 4 * 2 * 8
    assert "data" not in proba
    values = np.frombuffer(response.content[length:], dtype="<f8").reshape(4, 2)
    np.testing.assert_array_equal(values, artifacts.lr.predict_proba(rows))
    assert labels["data"] == artifacts.lr.predict(rows).tolist()


ROW_BYTES = np.zeros((1, N_FEATURES)).tobytes()
BINARY_CASES = [
    ("header-beyond-body", {"inputs": [binary_input(1, 160)]}, ROW_BYTES, 10_000,
     "Inference-Header-Content-Length 10000 is beyond the body's"),
    ("header-not-a-number", {"inputs": [binary_input(1, 160)]}, ROW_BYTES, "x",
     "must be a byte count"),
    ("size-beyond-data", {"inputs": [binary_input(1, 320)]}, ROW_BYTES, None,
     "binary_data_size 320 is beyond the 160 bytes left"),
    ("bytes-do-not-fit-shape", {"inputs": [binary_input(2, 160)]}, ROW_BYTES, None,
     "160 bytes of binary data, but shape [2, 20] of FP64 needs 320"),
    ("stray-bytes", {"inputs": [binary_input(1, 160)]}, ROW_BYTES + b"\0", None,
     "1 bytes of binary data follow"),
    ("size-not-integer", {"inputs": [binary_input(1, "160")]}, ROW_BYTES, None,
     "binary_data_size must be a non-negative integer"),
    ("bad-binary-flag", {"inputs": [binary_input(1, 160)],
                         "parameters": {"binary_data_output": "yes"}}, ROW_BYTES, None,
     "'binary_data_output' must be true or false"),
    ("header-malformed", {"inputs": [binary_input(1, 160)]}, ROW_BYTES, 5, "malformed JSON"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("header", "data", "length", "message"),
    [c[1:] for c in BINARY_CASES],
    ids=[c[0] for c in BINARY_CASES],
)
def test_inconsistent_lengths_are_400(
    lr_server: srv.Server, header: dict, data: bytes, length: int | str | None, message: str
) -> None:
    response = post_binary(lr_server, header, data, length)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_binary_size_without_the_header_is_400(lr_server: srv.Server) -> None:
    body = {"inputs": [binary_input(1, 160)]}
    response = lr_server.post("/v2/models/lr/infer", body)
    assert response.status_code == 400
    assert "the request has no Inference-Header-Content-Length" in response.json()["error"]
