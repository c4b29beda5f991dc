"""Requested outputs: labels by default, probabilities by name (V2) or parameter (V1)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression

from tests.serving import server as srv
from tests.serving.conftest import N_FEATURES, Artifacts

EXACT = {"rtol": 0, "atol": 1e-12}


def v2_request(rows: np.ndarray, *outputs: str) -> dict:
    return {
        "inputs": [{"name": "x", "shape": list(rows.shape), "datatype": "FP64",
                    "data": rows.ravel().tolist()}],
        "outputs": [{"name": name} for name in outputs],
    }  # fmt: skip


@pytest.mark.parametrize("name", ["lr", "rf"])
def test_v2_probabilities_equal_predict_proba(
    request: pytest.FixtureRequest, artifacts: Artifacts, name: str
) -> None:
    server: srv.Server = request.getfixturevalue(f"{name}_server")
    model = getattr(artifacts, name)
    rows = artifacts.x[:64]
    response = server.post(f"/v2/models/{name}/infer", v2_request(rows, "predict_proba"))
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert output["name"] == "predict_proba"
    assert output["datatype"] == "FP64"
    assert output["shape"] == [64, 2]
    assert output["parameters"] == {"classes": ["0", "1"]}
    proba = np.asarray(output["data"]).reshape(output["shape"])
    np.testing.assert_allclose(proba, model.predict_proba(rows), **EXACT)


def test_v2_outputs_come_in_the_order_asked(lr_server: srv.Server, artifacts: Artifacts) -> None:
    rows = artifacts.x[:5]
    body = lr_server.post("/v2/models/lr/infer", v2_request(rows, "predict_proba", "predict"))
    proba, labels = body.json()["outputs"]
    assert proba["name"] == "predict_proba"
    assert labels == {
        "name": "predict",
        "shape": [5],
        "datatype": "INT64",
        "data": artifacts.lr.predict(rows).tolist(),
    }


def test_v1_probabilities_through_the_output_parameter(
    lr_server: srv.Server, artifacts: Artifacts
) -> None:
    rows = artifacts.x[:8]
    request = {"instances": rows.tolist(), "parameters": {"output": "predict_proba"}}
    body = lr_server.post("/v1/models/lr:predict", request).json()
    assert body["classes"] == ["0", "1"]
    np.testing.assert_allclose(body["predictions"], artifacts.lr.predict_proba(rows), **EXACT)
    labels = {"instances": rows.tolist(), "parameters": {"output": "predict"}}
    answer = lr_server.post("/v1/models/lr:predict", labels).json()
    assert answer["predictions"] == artifacts.lr.predict(rows).tolist()


def predicted_rows(server: srv.Server) -> int:
    metrics = server.get("/metrics").text
    return sum(int(float(v)) for v in re.findall(r"^coalmine_predictions_total\{.*\} (\S+)$",
                                                 metrics, re.M))  # fmt: skip


def test_probability_requests_count_in_the_prediction_metrics(
    lr_server: srv.Server, artifacts: Artifacts
) -> None:
    before = predicted_rows(lr_server)
    lr_server.post("/v2/models/lr/infer", v2_request(artifacts.x[:6], "predict_proba"))
    request = {"instances": artifacts.x[:3].tolist(), "parameters": {"output": "predict_proba"}}
    lr_server.post("/v1/models/lr:predict", request)
    assert predicted_rows(lr_server) == before + 9


@pytest.fixture(scope="module")
def named_classes(tmp_path_factory: pytest.TempPathFactory) -> tuple[LogisticRegression, Path]:
    x = np.random.default_rng(0).normal(size=(200, 3))
    y = np.array(["setosa", "versicolor", "virginica"])[np.argmax(x, axis=1)]
    model = LogisticRegression().fit(x, y)
    path = tmp_path_factory.mktemp("classes") / "named.skops"
    skops.io.dump(model, path)
    return model, path


def test_string_classes_name_the_probability_columns(
    named_classes: tuple[LogisticRegression, Path],
) -> None:
    model, path = named_classes
    server = srv.start(["--name", "iris", "--uri", str(path)])
    try:
        rows = np.random.default_rng(1).normal(size=(7, 3))
        body = server.post("/v2/models/iris/infer", v2_request(rows, "predict", "predict_proba"))
        labels, proba = body.json()["outputs"]
        assert labels["datatype"] == "BYTES"
        assert labels["data"] == model.predict(rows).tolist()
        assert proba["parameters"] == {"classes": ["setosa", "versicolor", "virginica"]}
        np.testing.assert_allclose(
            np.reshape(proba["data"], (7, 3)), model.predict_proba(rows), **EXACT
        )
    finally:
        server.stop()


def test_a_regressor_offers_no_probabilities(reg_server: srv.Server) -> None:
    rows = np.zeros((1, 4))
    meta = reg_server.get("/v2/models/reg").json()
    assert [o["name"] for o in meta["outputs"]] == ["predict"]
    response = reg_server.post("/v2/models/reg/infer", v2_request(rows, "predict_proba"))
    assert response.status_code == 400
    assert response.json()["error"] == (
        "unknown output 'predict_proba'; this model provides 'predict'"
    )
    v1 = {"instances": rows.tolist(), "parameters": {"output": "predict_proba"}}
    assert reg_server.post("/v1/models/reg:predict", v1).status_code == 400


def test_unknown_outputs_list_what_the_model_offers(lr_server: srv.Server) -> None:
    rows = np.zeros((1, N_FEATURES))
    response = lr_server.post("/v2/models/lr/infer", v2_request(rows, "decision_function"))
    assert response.status_code == 400
    assert "this model provides 'predict', 'predict_proba'" in response.json()["error"]
