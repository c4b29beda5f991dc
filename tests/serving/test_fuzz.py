"""Arbitrary JSON never gets a 5xx and never takes the server down."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving import server as srv

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)
tensors = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=5),
        "shape": st.lists(st.integers(-2, 25), max_size=3) | json_values,
        "datatype": st.sampled_from(["FP64", "FP32", "INT64", "BOOL", "BYTES", "X"]) | json_values,
        "data": st.lists(st.floats(allow_nan=False) | st.integers(), max_size=45) | json_values,
    },
)
v2_bodies = st.fixed_dictionaries(
    {},
    optional={
        "inputs": st.lists(tensors, max_size=3) | json_values,
        "outputs": json_values,
        "id": json_values,
    },
)
quiet = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@quiet
@given(body=v2_bodies | json_values)
def test_v2_never_5xx(lr_server: srv.Server, body: object) -> None:
    response = lr_server.post("/v2/models/lr/infer", data=json.dumps(body).encode())
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert isinstance(response.json()["error"], str)


@quiet
@given(body=st.fixed_dictionaries({"instances": json_values}) | json_values)
def test_v1_never_5xx(lr_server: srv.Server, body: object) -> None:
    response = lr_server.post("/v1/models/lr:predict", data=json.dumps(body).encode())
    assert response.status_code < 500, response.text


@quiet
@given(raw=st.binary(max_size=200))
def test_raw_bytes_never_5xx(lr_server: srv.Server, raw: bytes) -> None:
    assert lr_server.post("/v2/models/lr/infer", data=raw).status_code < 500


binary_headers = st.fixed_dictionaries(
    {"inputs": st.lists(
        st.fixed_dictionaries(
            {"name": st.just("x"), "shape": st.lists(st.integers(0, 25), max_size=3),
             "datatype": st.sampled_from(["FP64", "FP32", "INT8", "BOOL", "BYTES", "FP16"]),
             "parameters": st.fixed_dictionaries({"binary_data_size": st.integers(-1, 400)})}
        ), max_size=3)},
    optional={"parameters": st.fixed_dictionaries({"binary_data_output": st.booleans()})},
)  # fmt: skip


@quiet
@given(header=binary_headers, data=st.binary(max_size=400), shift=st.integers(-5, 5))
def test_binary_bodies_never_5xx(
    lr_server: srv.Server, header: object, data: bytes, shift: int
) -> None:
    head = json.dumps(header).encode()
    response = lr_server.session.post(
        lr_server.url + "/v2/models/lr/infer",
        data=head + data,
        headers={"Inference-Header-Content-Length": str(max(len(head) + shift, 0))},
        timeout=10,
    )
    assert response.status_code < 500, response.text
