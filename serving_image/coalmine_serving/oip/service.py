"""The GRPCInferenceService RPCs, answered by the same App as REST.

The same model, batchers, row limit, readiness and metrics serve both
protocols: a gRPC request is counted under ``protocol="grpc"`` with the HTTP
status REST would have answered (``code``), so the analysis' error-rate and
latency queries read both without change. Errors carry REST's message text.
"""

from __future__ import annotations

import time
from typing import Any

import grpc

from coalmine_serving import __version__, protocol_v2
from coalmine_serving.app import EXTENSIONS, SERVER_NAME, App
from coalmine_serving.batching import ModelFailure
from coalmine_serving.errors import ServingError
from coalmine_serving.oip import codec
from coalmine_serving.oip import inference_pb2 as pb
from coalmine_serving.oip import inference_pb2_grpc as pb_grpc
from coalmine_serving.oip.status import code

PROTOCOL = "grpc"
"""The ``protocol`` label of gRPC inference requests in the metrics."""

Context = grpc.aio.ServicerContext[Any, Any]


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    """Health, metadata and inference of the one model an App serves."""

    def __init__(self, app: App, host: str) -> None:
        self._app = app
        self._host = host
        """The address prediction ids name (grpc.aio does not tell an RPC's local one)."""
        self._classes = codec.classes_parameter(app.model)
        model = app.model
        self._metadata = pb.ModelMetadataResponse(
            name=app.name,
            versions=[app.version],
            platform=model.platform,
            inputs=[_tensor_metadata(t) for t in protocol_v2.input_metadata(model)],
            outputs=[_tensor_metadata(t) for t in protocol_v2.output_metadata(model)],
        )
        self._server_metadata = pb.ServerMetadataResponse(
            name=SERVER_NAME, version=__version__, extensions=EXTENSIONS
        )

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: Context
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: Context
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self._app.ready)

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: Context
    ) -> pb.ModelReadyResponse:
        await self._check_model(request.name, request.version, context)
        return pb.ModelReadyResponse(ready=self._app.ready)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: Context
    ) -> pb.ServerMetadataResponse:
        return self._server_metadata

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: Context
    ) -> pb.ModelMetadataResponse:
        await self._check_model(request.name, request.version, context)
        return self._metadata

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: Context
    ) -> pb.ModelInferResponse:
        started = time.perf_counter()
        app = self._app
        try:
            app.check_model(request.model_name, request.model_version or None)
            app.admit()
            x, wanted = codec.decode(request, app.model, app.max_rows)
            out = await app.batcher_for(wanted).submit(x)
        except ServingError as exc:
            status, message = exc.status, exc.message
        except ModelFailure as exc:
            status, message = 500, str(exc)
        else:
            id = app.remember(request.id, out, self._host)
            response = codec.encode(app.name, app.version, id, wanted, out, self._classes)
            app.metrics.request(PROTOCOL, 200, time.perf_counter() - started)
            app.shadow(x, out)
            return response
        app.metrics.request(PROTOCOL, status, time.perf_counter() - started)
        await context.abort(code(status), message)

    async def _check_model(self, name: str, version: str, context: Context) -> None:
        """NOT_FOUND unless ``name`` (and ``version``, when not empty) are the model served."""
        try:
            self._app.check_model(name, version or None)
        except ServingError as exc:
            await context.abort(code(exc.status), exc.message)


def _tensor_metadata(doc: dict[str, Any]) -> pb.ModelMetadataResponse.TensorMetadata:
    """REST's tensor metadata (class names aside: gRPC's has no parameters)."""
    return pb.ModelMetadataResponse.TensorMetadata(
        name=doc["name"], datatype=doc["datatype"], shape=doc["shape"]
    )
