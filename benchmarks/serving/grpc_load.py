"""A bounded gRPC load generator: C clients, each on its own connection, one RPC in flight.

The gRPC counterpart of ``wrk -c C``: ~100 distinct single-row ModelInfer
requests (the rows wrk posts, FP64 in typed contents), serialised once and
sent round-robin until ``--seconds`` have passed or ``--max-requests`` were
answered, whichever comes first. Responses are not decoded. Prints one JSON
line: req/s, p50, p99, non-OK answers and transport errors. Loopback only.

    python grpc_load.py 127.0.0.1:8081 lr --concurrency 8 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import grpc
import numpy as np
import uvloop
from sklearn.datasets import make_classification

from coalmine_serving.oip import inference_pb2 as pb

METHOD = "/inference.GRPCInferenceService/ModelInfer"
LOOPBACK = ("127.0.0.1:", "localhost:", "[::1]:")
RPC_TIMEOUT = 10.0


def bodies(model: str) -> list[bytes]:
    """The benchmark's 100 single-row requests, serialised."""
    x, _ = make_classification(n_samples=10000, n_features=20, random_state=0)
    out = []
    for i in range(100):
        request = pb.ModelInferRequest(model_name=model)
        request.inputs.add(
            name="input-0",
            datatype="FP64",
            shape=[1, 20],
            contents=pb.InferTensorContents(fp64_contents=[round(v, 6) for v in x[i].tolist()]),
        )
        out.append(request.SerializeToString())
    return out


async def load(
    target: str, model: str, concurrency: int, seconds: float, max_requests: int
) -> dict[str, float]:
    payloads = bodies(model)
    latencies: list[float] = []
    failures = {"non_ok": 0, "errors": 0}
    deadline = time.perf_counter() + seconds
    options = [("grpc.use_local_subchannel_pool", 1)]  # one TCP connection per client
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(concurrency)]

    async def client(channel: grpc.aio.Channel, offset: int) -> None:
        call = channel.unary_unary(METHOD)  # bytes in, bytes out: no client-side codec
        n = offset
        while time.perf_counter() < deadline and len(latencies) < max_requests:
            started = time.perf_counter()
            try:
                await call(payloads[n % len(payloads)], timeout=RPC_TIMEOUT)
            except grpc.aio.AioRpcError as exc:
                failures["non_ok" if exc.code() != grpc.StatusCode.UNAVAILABLE else "errors"] += 1
            else:
                latencies.append(time.perf_counter() - started)
            n += 1

    for channel in channels:
        await channel.channel_ready()
    began = time.perf_counter()
    await asyncio.gather(*(client(c, i * 7) for i, c in enumerate(channels)))
    elapsed = time.perf_counter() - began
    for channel in channels:
        await channel.close()
    ms = np.asarray(latencies) * 1000.0 if latencies else np.zeros(1)
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "non_2xx": failures["non_ok"],
        "socket_errors": failures["errors"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("target", help="host:port on the loopback interface")
    p.add_argument("model")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--max-requests", type=int, default=2_000_000)
    args = p.parse_args()
    if not args.target.startswith(LOOPBACK):
        p.error("the load generator only targets the loopback interface")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(
            load(args.target, args.model, args.concurrency, args.seconds, args.max_requests)
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
