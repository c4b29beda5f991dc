"""Talk V2 gRPC to a test server with the generated stubs, from V2 JSON-shaped requests.

``to_proto`` turns a REST request body into the ModelInferRequest a client
would send, so REST cases can be replayed over gRPC: each input's values go in
the ``contents`` field of its datatype when they are of that kind, otherwise in
the field of their own kind (booleans sent as FP64 stay booleans on the wire),
or, with ``raw``, in ``raw_input_contents``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt

from coalmine_serving.oip import inference_pb2 as pb
from coalmine_serving.oip import inference_pb2_grpc as pb_grpc
from tests.serving import server as srv

TIMEOUT = 10.0
FIELD = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
         "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
         "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
         "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}  # fmt: skip
OWN_FIELD = {bool: "bool_contents", int: "int64_contents", float: "fp64_contents",
             str: "bytes_contents"}  # fmt: skip
TAKES = {"bool_contents": {bool}, "int_contents": {int}, "int64_contents": {int},
         "uint_contents": {int}, "uint64_contents": {int}, "fp32_contents": {float, int},
         "fp64_contents": {float, int}, "bytes_contents": {str}}  # fmt: skip
NUMPY = {"BOOL": "?", "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
         "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "FP16": "<f2",
         "FP32": "<f4", "FP64": "<f8"}  # fmt: skip


@contextmanager
def stub(server: srv.Server) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def flat(data: Any) -> list[Any]:
    if isinstance(data, list):
        return [v for item in data for v in flat(item)]
    return [data]


def to_proto(body: dict[str, Any], model: str, *, raw: bool = False) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model, id=str(body.get("id", "")))
    for doc in body.get("inputs", []):
        datatype = doc["datatype"]
        tensor = request.inputs.add(name=doc["name"], datatype=datatype, shape=doc.get("shape", []))
        values = flat(doc.get("data", []))
        if raw:
            request.raw_input_contents.append(raw_bytes(values, datatype))
            continue
        field = FIELD.get(datatype)
        kinds = {type(v) for v in values}
        if field is None or not kinds <= TAKES[field]:
            (kind,) = kinds  # mixed kinds have no wire form: the case is not representable
            field = OWN_FIELD[kind]
        if field == "bytes_contents":
            values = [v.encode() for v in values]
        getattr(tensor.contents, field).extend(values)
    for out in body.get("outputs", []):
        request.outputs.add(name=out["name"])
    return request


def raw_bytes(values: list[Any], datatype: str) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
    return np.asarray(values, dtype=NUMPY[datatype]).tobytes()


def outputs(response: pb.ModelInferResponse) -> dict[str, npt.NDArray[Any]]:
    """Each output's values from raw_output_contents, shaped."""
    assert len(response.raw_output_contents) == len(response.outputs)
    found = {}
    for tensor, raw in zip(response.outputs, response.raw_output_contents, strict=True):
        if tensor.datatype == "BYTES":
            values, offset = [], 0
            while offset < len(raw):
                (size,) = struct.unpack_from("<I", raw, offset)
                values.append(raw[offset + 4 : offset + 4 + size].decode())
                offset += 4 + size
            arr = np.asarray(values, dtype=object)
        else:
            arr = np.frombuffer(raw, dtype=NUMPY[tensor.datatype])
        found[tensor.name] = arr.reshape(list(tensor.shape))
    return found


def infer(server: srv.Server, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
    with stub(server) as client:
        response: pb.ModelInferResponse = client.ModelInfer(request, timeout=TIMEOUT)
        return response


def error(server: srv.Server, request: pb.ModelInferRequest) -> grpc.RpcError:
    """The error a request gets; the test fails when it succeeds."""
    try:
        infer(server, request)
    except grpc.RpcError as exc:
        return exc
    raise AssertionError("the request succeeded")
