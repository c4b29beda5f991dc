"""A client inside the cluster: requests to Services go through kube-proxy and DNS.

The host cannot reach cluster IPs (the service range is blackholed on the
host), and tests should see what clients see, so requests are made by the
test-http pod's /fetch and /load endpoints, reached from the host by pod IP.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

from tests.support.cluster import Cluster, wait_for

NAME = "client"


def http_server_deployment(
    name: str, image: str, replicas: int = 1, version: str = "v1"
) -> dict[str, Any]:
    """A restricted-profile Deployment of the test-http image."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 10,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "http",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "env": [{"name": "VERSION", "value": version}],
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "readinessProbe": {
                                "httpGet": {"path": "/readyz", "port": "http"},
                                "periodSeconds": 1,
                                "failureThreshold": 1,
                            },
                            "livenessProbe": {
                                "httpGet": {"path": "/healthz", "port": "http"},
                                "periodSeconds": 5,
                            },
                            # Endpoints go before the process stops taking requests.
                            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


class InClusterClient:
    """HTTP from a pod in `namespace`: single requests and bounded load runs.

    With `image`, the client's Deployment is created here; without, the Deployment `name`
    (pods labelled `app=NAME`, e.g. examples/demo/client.yaml) is already applied.
    """

    def __init__(
        self, cluster: Cluster, namespace: str, image: str | None = None, name: str = NAME
    ) -> None:
        if image is not None:
            cluster.apply(http_server_deployment(name, image), namespace=namespace)
        cluster.kubectl(
            "-n",
            namespace,
            "wait",
            "--for=condition=Available",
            f"deployment/{name}",
            "--timeout=120s",
            timeout=140,
        )
        pods = json.loads(
            cluster.kubectl(
                "-n", namespace, "get", "pods", "-l", f"app={name}", "-o", "json"
            ).stdout
        )["items"]
        self.ip: str = next(
            p["status"]["podIP"]
            for p in pods
            if not p["metadata"].get("deletionTimestamp") and p["status"].get("podIP")
        )
        self.base = f"http://{self.ip}:8080"

    def _call(self, path: str, body: Any = None, timeout: float = 15) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method="GET" if body is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result

    def request(self, url: str, body: Any = None) -> tuple[int, Any]:
        """One request to `url` from inside the cluster: (status, decoded JSON body)."""
        answer = self._call("/fetch?url=" + urllib.parse.quote(url, safe=""), body)
        if "error" in answer and "status" not in answer:
            raise ConnectionError(answer["error"])
        try:
            decoded = json.loads(answer["body"])
        except ValueError:
            decoded = answer["body"]
        return int(answer["status"]), decoded

    def start_load(
        self,
        url: str,
        bodies: list[Any],
        concurrency: int = 4,
        max_requests: int = 100_000,
        max_seconds: int = 600,
        rate: int = 0,
        close_every: int = 0,
        truths: list[Any] | None = None,
        feedback_url: str = "",
    ) -> None:
        """Closed loop: `concurrency` clients back to back; with `rate`, open loop: that many
        requests start each second whatever the answers (at most 2,048 in flight). Every
        request opens a new connection, unless `close_every` N: then connections are kept
        open and every Nth request closes its own. With `truths` (one per body) each answer's
        id goes to `feedback_url` with its body's truth, as an application labelling its
        predictions would."""
        self._call(
            "/load/start",
            {
                "url": url,
                "bodies": bodies,
                "concurrency": concurrency,
                "maxRequests": max_requests,
                "maxSeconds": max_seconds,
                "rate": rate,
                "keepAlive": close_every > 0,
                "closeEvery": close_every,
                "truths": truths or [],
                "feedbackUrl": feedback_url,
            },
        )

    @property
    def hooks_url(self) -> str:
        """Where this pod records webhook calls (POST), reachable from the host's operator."""
        return self.base + "/hooks"

    def hooks(self) -> list[dict[str, Any]]:
        """The webhook calls this pod received, oldest first."""
        calls: list[dict[str, Any]] = self._call("/hooks")["calls"]
        return calls

    def load_status(self) -> dict[str, Any]:
        return self._call("/load/status")

    def stop_load(self) -> dict[str, Any]:
        self._call("/load/stop", {})
        return wait_for(
            "the load run to stop", lambda: (s := self.load_status())["running"] is False and s
        )


def latency_quantile(load: dict[str, Any], q: float, seconds: range | None = None) -> float:
    """The `q` quantile, in ms, of the successful requests' latency over `seconds` of a load
    run (all of it by default): the upper bound of the histogram bucket it falls in."""
    bounds: list[float] = load["latencyBoundsMs"]
    counts = [0] * (len(bounds) + 1)
    picked = load["seconds"] if seconds is None else load["seconds"][seconds.start : seconds.stop]
    for second in picked:
        for i, n in enumerate(second["latencyMs"]):
            counts[i] += n
    total, seen = sum(counts), 0
    for i, n in enumerate(counts):
        seen += n
        if total and seen >= q * total:
            return bounds[i] if i < len(bounds) else float("inf")
    return 0.0
