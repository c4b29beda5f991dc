"""V2 inputs matched by name: from a signature or a model fitted on a DataFrame."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression

from tests.serving import server as srv
from tests.serving.conftest import N_FEATURES, Artifacts

NAMES = [f"f{j}" for j in range(N_FEATURES)]
SIGNATURE = json.dumps(
    {
        "inputs": [{"name": n, "datatype": "FP64"} for n in NAMES],
        "output": {"kind": "classification"},
    }
)
COLUMNS = ["petal_width", "sepal_length", "petal_length", "sepal_width"]


def per_feature(frame: pd.DataFrame, order: list[str], shape: str = "column") -> dict:
    rows = len(frame)
    return {
        "inputs": [
            {
                "name": name,
                "shape": [rows, 1] if shape == "column" else [rows],
                "datatype": "FP64",
                "data": frame[name].tolist(),
            }
            for name in order
        ]
    }


@pytest.fixture(scope="module")
def signed_server(artifacts: Artifacts) -> Iterator[srv.Server]:
    """The LogisticRegression with a signature naming its features f0..f19."""
    server = srv.start(["--name", "lr", "--uri", str(artifacts.lr_skops), "--signature", SIGNATURE])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def frame_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[LogisticRegression, Path]:
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(300, 4)), columns=COLUMNS)
    y = (x["petal_width"] + 0.5 * x["sepal_width"] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    path = tmp_path_factory.mktemp("frame") / "frame.skops"
    skops.io.dump(model, path)
    return model, path


@pytest.fixture(scope="module")
def frame_server(frame_model: tuple[LogisticRegression, Path]) -> Iterator[srv.Server]:
    """A model fitted on a DataFrame, served without a signature: its own names count."""
    server = srv.start(["--name", "iris", "--uri", str(frame_model[1])])
    yield server
    server.stop()


def test_metadata_reports_the_signature_inputs(signed_server: srv.Server) -> None:
    inputs = signed_server.get("/v2/models/lr").json()["inputs"]
    assert inputs == [{"name": n, "datatype": "FP64", "shape": [-1, 1]} for n in NAMES]


def test_metadata_reports_the_models_own_names(frame_server: srv.Server) -> None:
    inputs = frame_server.get("/v2/models/iris").json()["inputs"]
    assert [i["name"] for i in inputs] == COLUMNS


@pytest.mark.parametrize("shape", ["column", "flat"])
def test_one_input_per_feature_in_any_order(
    signed_server: srv.Server, artifacts: Artifacts, shape: str
) -> None:
    frame = pd.DataFrame(artifacts.x[:9], columns=NAMES)
    order = list(reversed(NAMES))
    body = signed_server.post("/v2/models/lr/infer", per_feature(frame, order, shape)).json()
    assert body["outputs"][0]["data"] == artifacts.lr.predict(artifacts.x[:9]).tolist()


def test_one_full_width_tensor_is_taken_in_signature_order(
    signed_server: srv.Server, artifacts: Artifacts
) -> None:
    rows = artifacts.x[:4]
    request = {
        "inputs": [{"name": "x", "shape": [4, N_FEATURES], "datatype": "FP64",
                    "data": rows.ravel().tolist()}]
    }  # fmt: skip
    body = signed_server.post("/v2/models/lr/infer", request).json()
    assert body["outputs"][0]["data"] == artifacts.lr.predict(rows).tolist()


def test_a_dataframe_models_names_reorder_inputs(
    frame_server: srv.Server, frame_model: tuple[LogisticRegression, Path]
) -> None:
    model = frame_model[0]
    frame = pd.DataFrame(np.random.default_rng(2).normal(size=(50, 4)), columns=COLUMNS)
    order = ["sepal_width", "petal_length", "petal_width", "sepal_length"]
    body = frame_server.post("/v2/models/iris/infer", per_feature(frame, order)).json()
    assert body["outputs"][0]["data"] == model.predict(frame).tolist()
    shuffled = frame_server.post("/v2/models/iris/infer", per_feature(frame, COLUMNS)).json()
    assert shuffled["outputs"] == body["outputs"]


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (["petal_width", "sepal_length", "petal_length"], "missing input 'sepal_width'"),
        ([*COLUMNS, "colour"], "unknown input 'colour'; the model takes 'petal_width'"),
        ([*COLUMNS, "sepal_length"], "input 'sepal_length' is given twice"),
    ],
    ids=["missing", "unknown", "twice"],
)
def test_wrong_names_are_400_naming_them(
    frame_server: srv.Server, order: list[str], message: str
) -> None:
    frame = pd.DataFrame(np.zeros((2, 5)), columns=[*COLUMNS, "colour"])
    response = frame_server.post("/v2/models/iris/infer", per_feature(frame, order))
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_many_missing_names_are_listed_briefly(signed_server: srv.Server) -> None:
    frame = pd.DataFrame(np.zeros((1, 2)), columns=["f0", "f1"])
    response = signed_server.post("/v2/models/lr/infer", per_feature(frame, ["f0", "f1"]))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("missing input 'f2', 'f3'")
    assert "and 8 more" in error


def test_signature_disagreeing_with_the_model_is_refused(
    frame_model: tuple[LogisticRegression, Path],
) -> None:
    swapped = [COLUMNS[1], COLUMNS[0], *COLUMNS[2:]]
    signature = json.dumps({"inputs": [{"name": n, "datatype": "FP64"} for n in swapped]})
    code, stderr = srv.run_to_exit(
        ["--name", "iris", "--uri", str(frame_model[1]), "--signature", signature]
    )
    assert code == 1
    assert "do not match the names the model was fitted with" in stderr


def test_signature_with_the_wrong_input_count_is_refused(artifacts: Artifacts) -> None:
    signature = json.dumps({"inputs": [{"name": "a", "datatype": "FP64"}]})
    code, stderr = srv.run_to_exit(
        ["--name", "lr", "--uri", str(artifacts.lr_skops), "--signature", signature]
    )
    assert code == 1
    assert "the signature has 1 inputs; the model takes 20" in stderr


def test_the_signatures_datatypes_hold(signed_server: srv.Server) -> None:
    frame = pd.DataFrame(np.zeros((2, N_FEATURES)), columns=NAMES)
    request = per_feature(frame, NAMES)
    request["inputs"][3].update(datatype="BOOL", data=[True, False])
    response = signed_server.post("/v2/models/lr/infer", request)
    assert response.status_code == 400
    assert response.json()["error"] == "input 'f3' is BOOL, but the model takes FP64 for it"
    matrix = {"inputs": [{"name": "x", "shape": [1, N_FEATURES], "datatype": "BOOL",
                          "data": [True] * N_FEATURES}]}  # fmt: skip
    response = signed_server.post("/v2/models/lr/infer", matrix)
    assert response.status_code == 400
    assert "takes FP64 for input 'f0'" in response.json()["error"]
