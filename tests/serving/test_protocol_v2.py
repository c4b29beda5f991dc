"""Open Inference Protocol V2 over real HTTP, with the spec's request and response shapes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.serving import server as srv
from tests.serving.conftest import N_FEATURES, Artifacts


def v2_request(rows: np.ndarray, *, datatype: str = "FP64", flat: bool = True) -> dict:
    data = rows.ravel().tolist() if flat else rows.tolist()
    return {
        "id": "42",
        "inputs": [
            {"name": "input-0", "shape": list(rows.shape), "datatype": datatype, "data": data}
        ],
    }


def test_server_metadata(lr_server: srv.Server) -> None:
    body = lr_server.get("/v2").json()
    assert body["name"] == "coalmine"
    assert isinstance(body["version"], str)
    assert body["extensions"] == ["binary_tensor_data"]


@pytest.mark.parametrize(
    "path",
    [
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/lr/ready",
        "/v2/models/lr/versions/7/ready",
    ],
)
def test_health_endpoints_are_200_when_ready(lr_server: srv.Server, path: str) -> None:
    assert lr_server.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/v2/models/lr", "/v2/models/lr/versions/7"])
def test_model_metadata(lr_server: srv.Server, path: str) -> None:
    body = lr_server.get(path).json()
    assert body["name"] == "lr"
    assert body["versions"] == ["7"]
    assert body["platform"] == "sklearn"
    assert body["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, N_FEATURES]}]
    assert body["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {
            "name": "predict_proba",
            "datatype": "FP64",
            "shape": [-1, 2],
            "parameters": {"classes": ["0", "1"]},
        },
    ]


@pytest.mark.parametrize("flat", [True, False], ids=["row-major", "nested"])
@pytest.mark.parametrize("path", ["/v2/models/lr/infer", "/v2/models/lr/versions/7/infer"])
def test_infer_matches_the_model(
    lr_server: srv.Server, artifacts: Artifacts, flat: bool, path: str
) -> None:
    rows = artifacts.x[:5]
    response = lr_server.post(path, v2_request(rows, flat=flat))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["model_name"] == "lr"
    assert body["model_version"] == "7"
    assert body["id"] == "42"
    (output,) = body["outputs"]
    assert output["name"] == "predict"
    assert output["datatype"] == "INT64"
    assert output["shape"] == [5]
    assert output["data"] == artifacts.lr.predict(rows).tolist()


def test_infer_without_id_gets_one_and_the_requested_output(
    lr_server: srv.Server, artifacts: Artifacts
) -> None:
    request = v2_request(artifacts.x[:2])
    del request["id"]
    request["outputs"] = [{"name": "predict"}]
    body = lr_server.post("/v2/models/lr/infer", request).json()
    assert "@127.0.0.1:" in body["id"]  # generated, naming the process that answered
    assert body["outputs"][0]["data"] == artifacts.lr.predict(artifacts.x[:2]).tolist()


def test_infer_accepts_one_input_per_feature(lr_server: srv.Server, artifacts: Artifacts) -> None:
    rows = artifacts.x[:3]
    inputs = [
        {"name": f"f{j}", "shape": [3, 1], "datatype": "FP32", "data": rows[:, j].tolist()}
        for j in range(N_FEATURES)
    ]
    body = lr_server.post("/v2/models/lr/infer", {"inputs": inputs}).json()
    assert body["outputs"][0]["data"] == artifacts.lr.predict(rows).tolist()


def test_infer_accepts_integer_tensors(lr_server: srv.Server, artifacts: Artifacts) -> None:
    rows = np.arange(2 * N_FEATURES).reshape(2, N_FEATURES) % 3 - 1
    response = lr_server.post("/v2/models/lr/infer", v2_request(rows, datatype="INT32"))
    assert response.status_code == 200
    assert response.json()["outputs"][0]["data"] == artifacts.lr.predict(rows).tolist()


def test_kserve_client_style_single_row(lr_server: srv.Server, artifacts: Artifacts) -> None:
    """KServe's and MLServer's REST clients send FP32 [1, n] row-major tensors."""
    row = artifacts.x[7:8].astype(np.float32)
    body = lr_server.post("/v2/models/lr/infer", v2_request(row, datatype="FP32")).json()
    assert body["outputs"][0]["data"] == artifacts.lr.predict(row.astype(np.float64)).tolist()


def test_random_forest_matches_the_model(rf_server: srv.Server, artifacts: Artifacts) -> None:
    rows = artifacts.x[:64]
    body = rf_server.post("/v2/models/rf/infer", v2_request(rows)).json()
    assert body["outputs"][0]["data"] == artifacts.rf.predict(rows).tolist()


def test_onnx_model(artifacts: Artifacts) -> None:
    server = srv.start(["--name", "onnx", "--uri", artifacts.lr_onnx.as_uri()])
    try:
        assert server.get("/v2/models/onnx").json()["platform"] == "onnx"
        rows = artifacts.x[:20]
        body = server.post("/v2/models/onnx/infer", v2_request(rows)).json()
        expected = artifacts.lr.predict(rows.astype(np.float32).astype(np.float64))
        agree = np.mean(np.asarray(body["outputs"][0]["data"]) == expected)
        assert agree >= 0.95  # float32 arithmetic may flip a row on the boundary
    finally:
        server.stop()


def test_regressor_returns_values(reg_server: srv.Server, artifacts: Artifacts) -> None:
    rows = np.array([[0.1, -1.0, 2.0, 0.5], [3.0, 0.0, -2.0, 1.0]])
    body = reg_server.post("/v2/models/reg/infer", v2_request(rows)).json()
    (output,) = body["outputs"]
    assert output["datatype"] == "FP64"
    assert output["data"] == pytest.approx(artifacts.reg.predict(rows).tolist())


def test_bool_tensors_are_numbers_without_a_signature(
    lr_server: srv.Server, artifacts: Artifacts
) -> None:
    rows = np.arange(N_FEATURES).reshape(1, N_FEATURES) % 2 == 0
    response = lr_server.post("/v2/models/lr/infer", v2_request(rows, datatype="BOOL"))
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == artifacts.lr.predict(rows * 1.0).tolist()
