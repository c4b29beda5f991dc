"""V2 gRPC from inside the cluster: a one-shot pod of the serving image (it carries grpcio
and the generated stubs) calls a Service's gRPC port and prints what it got as JSON.

Service addresses are not routable from this host (only pod IPs on the bridge are), so
the call has to start in a pod, as any in-cluster client's would.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from coalmine.resources import DEFAULT_IMAGE
from tests.support.cluster import Cluster, wait_for

SCRIPT = """
import json, sys
import grpc, numpy as np
from coalmine_serving.oip import inference_pb2 as pb, inference_pb2_grpc as pb_grpc
target, model, rows = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
tensor = pb.ModelInferRequest.InferInputTensor(
    name="input-0", datatype="FP64", shape=[len(rows), len(rows[0])],
    contents=pb.InferTensorContents(fp64_contents=[v for r in rows for v in r]))
with grpc.insecure_channel(target) as channel:
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    ready = stub.ServerReady(pb.ServerReadyRequest(), timeout=20).ready
    answer = stub.ModelInfer(pb.ModelInferRequest(model_name=model, inputs=[tensor]), timeout=20)
out = answer.outputs[0]
kinds = {"INT64": "<i8", "INT32": "<i4", "FP64": "<f8", "FP32": "<f4"}
data = np.frombuffer(answer.raw_output_contents[0], dtype=kinds[out.datatype]).tolist()
print(json.dumps({"ready": ready, "model_version": answer.model_version, "data": data}))
"""


def grpc_infer(
    cluster: Cluster, namespace: str, target: str, model: str, rows: list[list[float]]
) -> dict[str, Any]:
    """ServerReady and ModelInfer of `rows` against `target` (host:port), from a pod."""
    name = f"grpc-client-{uuid.uuid4().hex[:6]}"
    restricted = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "client",
                    "image": DEFAULT_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", "-c", SCRIPT, target, model, json.dumps(rows)],
                    "securityContext": restricted,
                }
            ],
        },
    }
    cluster.apply(pod, namespace=namespace)
    try:
        wait_for(
            f"pod {name} to finish",
            lambda: (
                cluster.get("pod", name, namespace)["status"].get("phase")
                in ("Succeeded", "Failed")
            ),
            timeout=120,
        )
        log = cluster.kubectl("-n", namespace, "logs", name).stdout
        phase = cluster.get("pod", name, namespace)["status"]["phase"]
        assert phase == "Succeeded", log
        answer: dict[str, Any] = json.loads(log.strip().splitlines()[-1])
        return answer
    finally:
        cluster.kubectl("-n", namespace, "delete", "pod", name, "--wait=false", check=False)
