"""A pipeline with a categorical column: BYTES inputs, MLServer's pandas codec, DataFrames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.pipeline import Pipeline

from tests.serving import server as srv
from tests.serving.peer_venv import MLSERVER, TRITON, python_with, run
from tests.serving.pipelines import frame, per_column

EXACT = {"rtol": 0, "atol": 1e-12}
# MLServer 1.7.1's codec maps numpy dtypes only: pandas 3's string columns go as objects.
ENCODE_WITH_MLSERVER = """
import sys
import pandas as pd
from mlserver.codecs import PandasCodec
frame = pd.read_json(sys.stdin, orient="split", dtype={"colour": object})
frame["colour"] = frame["colour"].astype(object)
print(PandasCodec.encode_request(frame).model_dump_json(exclude_none=True))
"""

# One binary input per column (BYTES length-prefixed), binary outputs: Triton's defaults.
TRITON_COLUMNS = """
import json, sys
import numpy as np
import tritonclient.http as http
frame = json.load(sys.stdin)
columns = [("colour", "BYTES", object), ("size", "FP64", np.float64), ("count", "INT64", np.int64)]
tensors = []
for name, datatype, dtype in columns:
    tensor = http.InferInput(name, [len(frame[name]), 1], datatype)
    tensor.set_data_from_numpy(np.asarray(frame[name], dtype=dtype).reshape(-1, 1))
    tensors.append(tensor)
result = http.InferenceServerClient(sys.argv[1]).infer("p", tensors)
print(json.dumps(result.as_numpy("predict").tolist()))
"""


def test_metadata_names_the_string_column(pipeline_server: srv.Server) -> None:
    inputs = pipeline_server.get("/v2/models/p").json()["inputs"]
    assert [(i["name"], i["datatype"]) for i in inputs[:2]] == [
        ("colour", "BYTES"),
        ("size", "FP64"),
    ]
    assert inputs[2]["name"] == "count"  # INT64 when the signature says so, else FP64


def test_mixed_rows_reach_the_model_as_its_dataframe(
    pipeline_server: srv.Server, pipeline: tuple[Pipeline, Path]
) -> None:
    model, data = pipeline[0], frame(40, 1)
    request = per_column(data, ["count", "colour", "size"], "predict", "predict_proba")
    response = pipeline_server.post("/v2/models/p/infer", request)
    assert response.status_code == 200, response.text
    labels, proba = response.json()["outputs"]
    assert labels["data"] == model.predict(data).tolist()
    np.testing.assert_allclose(
        np.reshape(proba["data"], proba["shape"]), model.predict_proba(data), **EXACT
    )


def test_a_request_from_mlservers_pandas_codec(
    pipeline_server: srv.Server, pipeline: tuple[Pipeline, Path]
) -> None:
    data = frame(25, 2)
    encoded = run(python_with(*MLSERVER), ENCODE_WITH_MLSERVER, stdin=data.to_json(orient="split"))
    request = json.loads(encoded)
    assert request["parameters"] == {"content_type": "pd"}
    response = pipeline_server.post("/v2/models/p/infer", request)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == pipeline[0].predict(data).tolist()


def test_tritons_client_sends_the_string_column_in_binary(
    pipeline_server: srv.Server, pipeline: tuple[Pipeline, Path]
) -> None:
    data = frame(30, 3)
    url = f"127.0.0.1:{pipeline_server.port}"
    columns = json.dumps(data.to_dict(orient="list"))
    labels = run(python_with(*TRITON), TRITON_COLUMNS, url, stdin=columns)
    assert json.loads(labels) == pipeline[0].predict(data).tolist()


def typed(name: str, datatype: str, data: list[object]) -> dict:
    return {"name": name, "shape": [len(data)], "datatype": datatype, "data": data}


GOOD = {"colour": typed("colour", "BYTES", ["red"]), "size": typed("size", "FP64", [0.5]),
        "count": typed("count", "INT64", [2])}  # fmt: skip
BAD_TYPES = [
    ("number-for-string", {"colour": typed("colour", "FP64", [1.0])},
     "input 'colour' is FP64, but the model takes BYTES for it"),
    ("string-for-number", {"size": typed("size", "BYTES", ["big"])},
     "input 'size' is BYTES, but the model takes"),
    ("bytes-holding-numbers", {"colour": typed("colour", "BYTES", [3])},
     "input 'colour': BYTES data must be strings"),
    ("missing-column", {"colour": None}, "missing input 'colour'"),
    ("unknown-category", {"colour": typed("colour", "BYTES", ["purple"])},
     "input 'colour': unknown categories 'purple'; the model knows 'blue', 'green', 'red'"),
    ("huge-number", {"size": typed("size", "FP64", [1e300])},
     "input 'size': value out of range"),
    ("no-rows", {c: typed(c, t, []) for c, t in [("colour", "BYTES"), ("size", "FP64"),
                                                  ("count", "INT64")]}, "empty batch"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"), [c[1:] for c in BAD_TYPES], ids=[c[0] for c in BAD_TYPES]
)
def test_bad_types_are_400_naming_the_column(
    pipeline_server: srv.Server, change: dict, message: str
) -> None:
    inputs = [t for t in {**GOOD, **change}.values() if t is not None]
    response = pipeline_server.post("/v2/models/p/infer", {"inputs": inputs})
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_v1_is_refused_for_string_inputs(pipeline_server: srv.Server) -> None:
    response = pipeline_server.post("/v1/models/p:predict", {"instances": [["red", 0.5, 2]]})
    assert response.status_code == 400
    assert "send them over V2" in response.json()["error"]


cells = (
    st.text(max_size=6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**40), 2**40)
)
columns = st.fixed_dictionaries(
    {"name": st.sampled_from(["colour", "size", "count", "other"]),
     "datatype": st.sampled_from(["BYTES", "FP64", "INT64", "BOOL"]),
     "data": st.lists(cells, min_size=0, max_size=4)}
)  # fmt: skip


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(inputs=st.lists(columns, max_size=4))
def test_string_models_never_5xx(pipeline_server: srv.Server, inputs: list[dict]) -> None:
    for tensor in inputs:
        tensor["shape"] = [len(tensor["data"])]
    response = pipeline_server.post("/v2/models/p/infer", {"inputs": inputs})
    assert response.status_code < 500, response.text
