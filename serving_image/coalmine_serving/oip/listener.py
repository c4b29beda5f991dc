"""The gRPC server beside the HTTP one: same event loop, same App, its own port.

grpc.aio runs on uvloop (it polls its own completion queue and hands results
to whichever asyncio loop is running). gRPC cannot take a listening socket
from the parent process, so with ``--workers`` > 1 each forked worker binds
the port itself with SO_REUSEPORT and the kernel spreads connections over
them; a single worker binds it exclusively, so a port already taken fails the
start instead of sharing it silently. The message limit is ``--max-body-bytes``,
as for an HTTP body.
"""

from __future__ import annotations

import grpc

from coalmine_serving.app import App
from coalmine_serving.config import Settings
from coalmine_serving.oip import inference_pb2_grpc as pb_grpc
from coalmine_serving.oip.service import InferenceService


def address(host: str, port: int) -> str:
    """``host:port`` as gRPC spells it (IPv6 hosts in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def start(app: App, settings: Settings, host: str) -> grpc.aio.Server:
    """Serve ``app`` on ``--grpc-port``, its prediction ids naming ``host``; raise OSError
    when the port cannot be bound."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            ("grpc.so_reuseport", int(settings.workers > 1)),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceService(app, host), server)
    where = address(settings.host, settings.grpc_port)
    try:
        bound = server.add_insecure_port(where)
    except RuntimeError as exc:  # grpcio raises where it used to return 0
        raise OSError(f"cannot listen on {where} (gRPC): {exc}") from None
    if not bound:
        raise OSError(f"cannot listen on {where} (gRPC)")
    await server.start()
    return server
