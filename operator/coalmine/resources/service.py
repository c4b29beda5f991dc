"""Services: one stable endpoint per ModelDeployment, and one per variant where needed.

The endpoint selects both variants, so with the `kubernetes` router the
replica ratio is the traffic split. The per-variant Services give the Gateway
API router its weighted backends, and shadow copies the canary; the routers
write only those (traffic/common.py `services`).
REST is on port 80, the Open Inference Protocol's gRPC on 8081 (HTTP/2 without
TLS, so kube-proxy balances gRPC per connection, not per request).
"""

from __future__ import annotations

from coalmine.api.deployment import ModelDeployment
from coalmine.resources.deployment import GRPC_PORT, GRPC_PORT_NAME, PORT_NAME
from coalmine.resources.naming import (
    Manifest,
    Variant,
    common_labels,
    object_meta,
    selector_labels,
    service_name,
)

SERVICE_PORT = 80


def build_service(md: ModelDeployment, variant: Variant | None = None) -> Manifest:
    """The Service of `md`'s pods: both variants when `variant` is None, else just one."""
    meta = object_meta(service_name(md, variant), md, common_labels(md, variant))
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(md, variant),
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": SERVICE_PORT,
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                    "appProtocol": "http",
                },
                {
                    "name": GRPC_PORT_NAME,
                    "port": GRPC_PORT,
                    "targetPort": GRPC_PORT_NAME,
                    "protocol": "TCP",
                    "appProtocol": "kubernetes.io/h2c",
                },
            ],
        },
    }


def service_url(md: ModelDeployment) -> str:
    """The in-cluster URL clients call, recorded in status.url."""
    namespace = md.metadata.namespace or "default"
    return f"http://{service_name(md)}.{namespace}.svc.cluster.local"
