"""Every client mistake over gRPC: REST's status as a gRPC code, REST's message as details.

The REST matrices of test_bad_input.py and test_string_inputs.py are replayed
through ``to_proto``, except where the mistake has no protobuf form; where the
wire form changes what is wrong (a string sent for FP64 arrives in
bytes_contents), the message names the contents field instead.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from coalmine_serving.oip import inference_pb2 as pb
from tests.serving import server as srv
from tests.serving.conftest import N_FEATURES, Artifacts
from tests.serving.grpc_v2 import error, infer, stub, to_proto
from tests.serving.models import POISON
from tests.serving.test_bad_input import ROW, V2_CASES, tensor
from tests.serving.test_string_inputs import BAD_TYPES, GOOD

CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 413: grpc.StatusCode.RESOURCE_EXHAUSTED}
NO_WIRE_FORM = {
    "malformed-json": "protobuf, not JSON",
    "not-an-object": "protobuf, not JSON",
    "nan-literal": "protobuf, not JSON (a NaN value is a gRPC case below)",
    "input-not-object": "inputs are messages",
    "uint-negative": "uint_contents holds no negative numbers",
    "int64-overflow": "int64_contents holds no 2**63",
    "fp32-overflow": "fp32_contents holds no -1e39",
    "nulls": "contents hold no nulls",
    "ragged": "contents are flat",
    "data-not-list": "contents are lists",
    "outputs-not-list": "outputs are a repeated field",
    "output-not-object": "outputs are messages",
}
OWN_MESSAGE = {  # the same mistake, named in gRPC's terms
    "no-data": "input 'x' has no data: FP64 values go in contents.fp64_contents",
    "no-shape": "input 'x': shape [] needs 1 values, got 20",
    "bytes-not-strings": "input 'x': data does not match datatype BYTES (sent in"
    " contents.int64_contents; BYTES values go in contents.bytes_contents)",
    "fp16-overflow": "input 'x': data does not match datatype FP16 (sent in"
    " contents.fp64_contents; FP16 values go in raw_input_contents)",
    "strings-as-fp": "input 'x': data does not match datatype FP64 (sent in"
    " contents.bytes_contents",
    "bytes-holding-numbers": "input 'colour': data does not match datatype BYTES",
}
REPLAYED = [c for c in V2_CASES if c[0] not in NO_WIRE_FORM]


def one(datatype: str, shape: list[int], **contents: list[object]) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="lr")
    request.inputs.add(name="x", datatype=datatype, shape=shape, contents=contents)
    return request


def with_raw(request: pb.ModelInferRequest, *raw: bytes) -> pb.ModelInferRequest:
    request.raw_input_contents.extend(raw)
    return request


ROW_BYTES = np.zeros(N_FEATURES).tobytes()
GRPC_CASES = [
    ("nan", one("FP64", [1, N_FEATURES], fp64_contents=[float("nan"), *ROW[1:]]),
     "input contains NaN or infinity"),
    ("negative-shape", one("FP64", [-1, N_FEATURES], fp64_contents=ROW),
     "input 'x' needs 'shape', a list of non-negative integers"),
    ("two-contents-fields", one("FP64", [1, N_FEATURES], fp64_contents=ROW, int64_contents=[1]),
     "input 'x' has data in contents.int64_contents, contents.fp64_contents"),
    ("bytes-not-utf8", one("BYTES", [1, 1], bytes_contents=[b"\xff"]),
     "input 'x': BYTES element 0 is not UTF-8"),
    ("uint8-overflow", one("UINT8", [1, N_FEATURES], uint_contents=[300] * N_FEATURES),
     "input 'x': value 300 is outside UINT8's range [0, 255]"),
    ("raw-and-contents", with_raw(one("FP64", [1, N_FEATURES], fp64_contents=ROW), ROW_BYTES),
     "input 'x' has both contents and raw_input_contents"),
    ("raw-count", with_raw(one("FP64", [1, N_FEATURES]), ROW_BYTES, ROW_BYTES),
     "raw_input_contents has 2 entries for 1 inputs"),
    ("raw-short", with_raw(one("FP64", [1, N_FEATURES]), ROW_BYTES[:-1]),
     "input 'x': 159 bytes of binary data, but shape [1, 20] of FP64 needs 160"),
    ("raw-bytes-short", with_raw(one("BYTES", [1, 1]), b"\x05\0\0\0red"),
     "input 'x': binary BYTES element 0 runs past the data"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "body", "status", "message"), REPLAYED, ids=[c[0] for c in REPLAYED]
)
def test_rest_cases_over_grpc(
    lr_server: srv.Server, case: str, body: dict, status: int, message: str
) -> None:
    exc = error(lr_server, to_proto(body, "lr"))
    assert exc.code() == CODES[status]
    assert OWN_MESSAGE.get(case, message) in exc.details()


@pytest.mark.parametrize(
    ("proto", "message"), [c[1:] for c in GRPC_CASES], ids=[c[0] for c in GRPC_CASES]
)
def test_grpc_only_cases(lr_server: srv.Server, proto: pb.ModelInferRequest, message: str) -> None:
    exc = error(lr_server, proto)
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in exc.details()


@pytest.mark.parametrize(("case", "change", "message"), BAD_TYPES, ids=[c[0] for c in BAD_TYPES])
def test_string_model_cases_over_grpc(
    pipeline_server: srv.Server, case: str, change: dict, message: str
) -> None:
    inputs = [t for t in {**GOOD, **change}.values() if t is not None]
    exc = error(pipeline_server, to_proto({"inputs": inputs}, "p"))
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert OWN_MESSAGE.get(case, message) in exc.details()


def test_raw_rows_beyond_max_rows_are_resource_exhausted(lr_server: srv.Server) -> None:
    proto = with_raw(one("FP64", [101, N_FEATURES]), np.zeros((101, N_FEATURES)).tobytes())
    exc = error(lr_server, proto)
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "too many rows: 101 > 100 (--max-rows)" in exc.details()


def test_a_message_above_max_body_bytes_is_refused(lr_server: srv.Server) -> None:
    rows = 1000  # 160 kB of raw FP64 > --max-body-bytes 65536
    proto = with_raw(one("FP64", [rows, N_FEATURES]), np.zeros((rows, N_FEATURES)).tobytes())
    exc = error(lr_server, proto)
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with stub(lr_server) as client:
        assert client.ServerReady(pb.ServerReadyRequest(), timeout=10).ready


@pytest.mark.parametrize(
    ("model", "version", "message"),
    [("nope", "", "model 'nope' not found; this server serves 'lr'"),
     ("lr", "9", "model 'lr' has no version '9'")],
    ids=["model", "version"],
)  # fmt: skip
def test_unknown_models_and_versions_are_not_found(
    lr_server: srv.Server, artifacts: Artifacts, model: str, version: str, message: str
) -> None:
    proto = to_proto(tensor(ROW, [1, N_FEATURES]), model)
    proto.model_version = version
    exc = error(lr_server, proto)
    assert exc.code() == grpc.StatusCode.NOT_FOUND
    assert exc.details() == message
    with stub(lr_server) as client:
        for rpc, ask in [
            (client.ModelReady, pb.ModelReadyRequest(name=model, version=version)),
            (client.ModelMetadata, pb.ModelMetadataRequest(name=model, version=version)),
        ]:
            with pytest.raises(grpc.RpcError) as raised:
                rpc(ask, timeout=10)
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND
            assert raised.value.details() == message


def test_a_model_exception_is_internal_and_counted_as_a_500(failing_server: srv.Server) -> None:
    poisoned = to_proto(tensor([POISON, 0.0, 0.0], [1, 3]), "failing")
    exc = error(failing_server, poisoned)
    assert exc.code() == grpc.StatusCode.INTERNAL
    assert "poisoned row" in exc.details()
    fine = infer(failing_server, to_proto(tensor([1.0, 2.0, 3.0], [1, 3]), "failing"))
    assert np.frombuffer(fine.raw_output_contents[0], "<i8").tolist() == [0]
    metrics = failing_server.get("/metrics").text
    assert 'coalmine_request_errors_total{code="500",model="failing",protocol="grpc"' in metrics
