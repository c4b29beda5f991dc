"""A real Gateway API implementation in the test cluster: Traefik, built from Go modules.

Why Traefik: it is the one mainstream implementation whose data plane is Go, so
it builds here from the Go module proxy (hack/gateway/build.sh); Envoy Gateway,
Contour, Istio, Cilium and kgateway all proxy through the C++ Envoy, which no
registry here carries, and NGINX Gateway Fabric, Kong and HAProxy's controllers
are not on the module proxy. Traefik implements HTTPRoute weights, all the
operator's routes use (they never mirror: the stable pods copy shadow traffic).
"""

from __future__ import annotations

import subprocess
from typing import Any

from tests.support.cluster import REPO, Cluster, ensure_namespace
from tests.support.images import build_and_load

NAMESPACE = "coalmine-gateway"
GATEWAY = "edge"
GATEWAY_CLASS = "coalmine-traefik"
PORT = 8000
IMAGE = "coalmine/traefik:v3.7.13"
URL = f"http://traefik.{NAMESPACE}.svc.cluster.local:{PORT}"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}
GATEWAY_KINDS = [
    "gatewayclasses",
    "gateways",
    "httproutes",
    "grpcroutes",
    "tcproutes",
    "tlsroutes",
    "udproutes",
    "referencegrants",
    "backendtlspolicies",
    "listenersets",
]


def install_gateway_api_crds(cluster: Cluster) -> None:
    """The standard-channel CRDs of the sigs.k8s.io/gateway-api module."""
    crds = subprocess.run(
        ["bash", str(REPO / "hack/gateway/crds.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", crds)
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/httproutes.gateway.networking.k8s.io",
        "crd/gateways.gateway.networking.k8s.io",
        "crd/gatewayclasses.gateway.networking.k8s.io",
    )


def _rbac() -> list[dict[str, Any]]:
    rules = [
        {
            "apiGroups": ["gateway.networking.k8s.io"],
            "resources": GATEWAY_KINDS,
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["gateway.networking.k8s.io"],
            "resources": [f"{k}/status" for k in GATEWAY_KINDS],
            "verbs": ["update", "patch"],
        },
        {
            "apiGroups": [""],
            "resources": ["services", "secrets", "namespaces", "configmaps", "nodes"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        },
    ]
    meta = {"name": "coalmine-test-traefik"}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "traefik"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta,
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": meta["name"],
            },
            "subjects": [{"kind": "ServiceAccount", "name": "traefik", "namespace": NAMESPACE}],
        },
    ]


def _traefik() -> list[dict[str, Any]]:
    labels = {"app": "traefik"}
    args = [
        f"--entryPoints.web.address=:{PORT}",
        "--entryPoints.traefik.address=:8080",
        "--ping=true",
        "--providers.kubernetesgateway=true",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--log.level=INFO",
    ]
    container = {
        "name": "traefik",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "ports": [{"name": "web", "containerPort": PORT}, {"name": "ping", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/ping", "port": "ping"}, "periodSeconds": 2},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "traefik"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "traefik",
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [container],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "traefik"},
            "spec": {
                "selector": labels,
                "ports": [{"name": "web", "port": PORT, "targetPort": "web"}],
            },
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": GATEWAY_CLASS},
            "spec": {"controllerName": "traefik.io/gateway-controller"},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": GATEWAY},
            "spec": {
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": [
                    {
                        "name": "web",
                        "protocol": "HTTP",
                        "port": PORT,
                        "allowedRoutes": {"namespaces": {"from": "All"}},
                    }
                ],
            },
        },
    ]


def start_traefik(cluster: Cluster) -> None:
    """Install the CRDs, Traefik, a GatewayClass and the Gateway `edge`; wait until programmed."""
    install_gateway_api_crds(cluster)
    build_and_load(cluster, "image-traefik", "coalmine-traefik.tar")
    ensure_namespace(cluster, NAMESPACE, RESTRICTED.items())
    cluster.apply(*_rbac(), *_traefik(), namespace=NAMESPACE)
    cluster.kubectl("-n", NAMESPACE, "rollout", "status", "deploy/traefik", "--timeout=120s")
    for kind, name, condition in [
        ("gatewayclass", GATEWAY_CLASS, "Accepted"),
        ("gateway", GATEWAY, "Programmed"),
    ]:
        wait = ("wait", f"--for=condition={condition}", f"{kind}/{name}", "--timeout=60s")
        cluster.kubectl("-n", NAMESPACE, *wait)


def parent_ref() -> dict[str, str]:
    return {"name": GATEWAY, "namespace": NAMESPACE}
