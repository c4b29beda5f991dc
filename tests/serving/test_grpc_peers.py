"""Triton's and KServe's gRPC clients, unchanged, get the model's answers (and REST's).

Each client runs in a virtualenv of its own (tests/serving/peer_venv.py), fed
the tensors as JSON on stdin. Triton's client sends raw_input_contents
(set_data_from_numpy); KServe's sends typed contents for list data and raw
contents for numpy arrays, so both forms are exercised.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from tests.serving import server as srv
from tests.serving.conftest import Artifacts
from tests.serving.peer_venv import KSERVE, TRITON_GRPC, python_with, run
from tests.serving.pipelines import frame, per_column

EXACT = {"rtol": 0, "atol": 1e-12}
NUMPY = {"BYTES": "object", "FP64": "float64", "INT64": "int64"}

TRITON = """
import json, sys
import numpy as np
import tritonclient.grpc as grpcclient
doc = json.load(sys.stdin)
client = grpcclient.InferenceServerClient(doc["url"])
model = doc["model"]
assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(model)
meta = client.get_model_metadata(model)
tensors = []
for t in doc["inputs"]:
    tensor = grpcclient.InferInput(t["name"], t["shape"], t["datatype"])
    tensor.set_data_from_numpy(np.asarray(t["data"], dtype=t["numpy"]).reshape(t["shape"]))
    tensors.append(tensor)
asked = [grpcclient.InferRequestedOutput(name) for name in doc["outputs"]]
result = client.infer(model, tensors, outputs=asked)
proba = result.get_output("predict_proba")
print(json.dumps({
    "inputs": [[i.name, i.datatype, list(i.shape)] for i in meta.inputs],
    "outputs": {name: result.as_numpy(name).tolist() for name in doc["outputs"]},
    "classes": json.loads(proba.parameters["classes"].string_param) if proba else None,
}))
"""

KSERVE_CLIENT = """
import asyncio, json, sys
import numpy as np
from kserve import InferenceGRPCClient, InferInput, InferRequest
from kserve.protocol.infer_type import RequestedOutput
doc = json.load(sys.stdin)

async def main():
    client = InferenceGRPCClient(doc["url"], timeout=10, retries=0)
    model = doc["model"]
    assert await client.is_server_live() and await client.is_server_ready()
    assert await client.is_model_ready(model)
    inputs = []
    for t in doc["inputs"]:
        if doc["numpy"]:
            data = np.asarray(t["data"], dtype=t["numpy"]).reshape(t["shape"])
            tensor = InferInput(t["name"], t["shape"], t["datatype"])
            tensor.set_data_from_numpy(data)
        else:
            tensor = InferInput(t["name"], t["shape"], t["datatype"], data=t["data"])
        inputs.append(tensor)
    asked = [RequestedOutput(name) for name in doc["outputs"]]
    request = InferRequest(model, inputs, request_id="1", request_outputs=asked)
    response = await client.infer(request)
    await client.close()
    out = {o.name: o for o in response.outputs}
    proba = out.get("predict_proba")
    print(json.dumps({
        "outputs": {name: out[name].as_numpy().tolist() for name in doc["outputs"]},
        "classes": json.loads(proba.parameters["classes"].string_param) if proba else None,
    }))

asyncio.run(main())
"""


def call(client: str, server: srv.Server, model: str, body: dict, **extra: Any) -> dict:
    """Run a peer's client on a V2 request body; its parsed answer."""
    inputs = [{**t, "numpy": NUMPY[t["datatype"]]} for t in body["inputs"]]
    doc = {"url": server.grpc_target, "model": model, "inputs": inputs,
           "outputs": [o["name"] for o in body["outputs"]], **extra}  # fmt: skip
    if client == "triton":
        script, python = TRITON, python_with(*TRITON_GRPC)
    else:
        script, python = KSERVE_CLIENT, python_with(*KSERVE)
    answer: dict = json.loads(run(python, script, stdin=json.dumps(doc)))
    return answer


def rows_request(rows: np.ndarray) -> dict:
    return {
        "inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
                    "data": rows.ravel().tolist()}],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    }  # fmt: skip


def rest_answer(server: srv.Server, model: str, body: dict) -> dict[str, list]:
    response = server.post(f"/v2/models/{model}/infer", body)
    assert response.status_code == 200, response.text
    return {
        o["name"]: np.reshape(o["data"], o["shape"]).tolist() for o in response.json()["outputs"]
    }


CLIENTS = [("triton", {}), ("kserve", {"numpy": False}), ("kserve", {"numpy": True})]
CLIENT_IDS = ["triton", "kserve-contents", "kserve-raw"]


@pytest.mark.parametrize(("client", "extra"), CLIENTS, ids=CLIENT_IDS)
@pytest.mark.parametrize("name", ["lr", "rf"])
def test_peer_clients_get_the_models_answers(
    request: pytest.FixtureRequest, artifacts: Artifacts, name: str, client: str, extra: dict
) -> None:
    server: srv.Server = request.getfixturevalue(f"{name}_server")
    model, rows = getattr(artifacts, name), artifacts.x[:16]
    body = rows_request(rows)
    answer = call(client, server, name, body, **extra)
    assert answer["outputs"]["predict"] == model.predict(rows).tolist()
    np.testing.assert_allclose(
        answer["outputs"]["predict_proba"], model.predict_proba(rows), **EXACT
    )
    assert answer["outputs"] == rest_answer(server, name, body)
    assert answer["classes"] == [str(c) for c in model.classes_]
    if client == "triton":
        assert answer["inputs"] == [["input-0", "FP64", [-1, rows.shape[1]]]]


@pytest.mark.parametrize(("client", "extra"), CLIENTS, ids=CLIENT_IDS)
def test_peer_clients_send_a_string_column_by_name(
    pipeline_server: srv.Server, pipeline: tuple[Pipeline, Path], client: str, extra: dict
) -> None:
    model, data = pipeline[0], frame(30, 4)
    body = per_column(data, ["size", "colour", "count"], "predict", "predict_proba")
    answer = call(client, pipeline_server, "p", body, **extra)
    assert answer["outputs"]["predict"] == model.predict(data).tolist()
    np.testing.assert_allclose(
        answer["outputs"]["predict_proba"], model.predict_proba(data), **EXACT
    )
    assert answer["outputs"]["predict"] == rest_answer(pipeline_server, "p", body)["predict"]
    if client == "triton":
        assert [i[:2] for i in answer["inputs"]][:2] == [["colour", "BYTES"], ["size", "FP64"]]
