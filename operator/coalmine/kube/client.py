"""Generic reads and writes of the few kinds the operator touches.

Writes are server-side apply with field manager `coalmine`, so the operator
owns exactly the fields it sets and never the user's. With a watch cache (kube/cache.py)
reads of the watched kinds cost no request, every answer to a write updates it, and an
apply that would change nothing (kube/applied.py) is not sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from coalmine.kube.applied import stamped, unchanged
from coalmine.kube.cache import Cache

FIELD_MANAGER = "coalmine"
Manifest = dict[str, Any]


class NotLeading(Exception):
    """A write was refused because another replica may be the leader now."""


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


KINDS: dict[str, Kind] = {
    "ModelDeployment": Kind("coalmine.dev", "v1alpha1", "modeldeployments"),
    "ModelVersion": Kind("coalmine.dev", "v1alpha1", "modelversions"),
    "RolloutStrategy": Kind("coalmine.dev", "v1alpha1", "rolloutstrategies"),
    "Deployment": Kind("apps", "v1", "deployments"),
    "Service": Kind("", "v1", "services"),
    "ConfigMap": Kind("", "v1", "configmaps"),
    "Pod": Kind("", "v1", "pods"),
    "Event": Kind("", "v1", "events"),
    "Job": Kind("batch", "v1", "jobs"),
    "HorizontalPodAutoscaler": Kind("autoscaling", "v2", "horizontalpodautoscalers"),
    "HTTPRoute": Kind("gateway.networking.k8s.io", "v1", "httproutes"),
}


class Kube:
    """A small synchronous client; the async handlers call it from worker threads."""

    def __init__(self, api: client.ApiClient | None = None, connections: int = 0) -> None:
        """`connections`: how many threads may hold a connection at once (0: the client's
        default, five per CPU); more threads than that would each open and drop one."""
        if api is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            settings = client.Configuration.get_default_copy()
            if connections:
                settings.connection_pool_maxsize = connections
            api = client.ApiClient(settings)
        self.api = api
        self.fence: Callable[[], bool] | None = None
        """When set, writes go out only while it returns true (leader election)."""
        self.cache: Cache | None = None
        """When set and ready, reads of the kinds it covers are answered from it."""

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        timeout: float = 30,
    ) -> Any:
        """One request; JSON in and out, ApiException on any non-2xx answer. A write while
        the fence is closed raises NotLeading before anything is sent."""
        if method != "GET" and self.fence is not None and not self.fence():
            raise NotLeading(f"{method} {path}: this replica does not hold the lease")
        # The REST layer JSON-encodes bodies of JSON content types itself; an apply
        # patch (YAML content type) must arrive as text, and JSON is valid YAML.
        payload = json.dumps(body) if body is not None and "json" not in content_type else body
        _, url, headers, data, post = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=payload,
            auth_settings=["BearerToken"],
        )
        resp = self.api.call_api(
            method,
            url,
            header_params=headers,
            body=data,
            post_params=post,
            _request_timeout=timeout,
        )
        resp.read()
        if not 200 <= resp.status < 300:
            raise ApiException(http_resp=resp)
        return json.loads(resp.data) if resp.data else None

    def get(self, kind: str, namespace: str | None, name: str) -> Manifest | None:
        """The object, or None when it does not exist."""
        if self.cache is not None and self.cache.covers(kind):
            return self.cache.get(kind, namespace, name)
        try:
            result: Manifest = self.request("GET", KINDS[kind].path(namespace, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return result

    def list(
        self, kind: str, namespace: str | None, labels: dict[str, str] | None = None
    ) -> list[Manifest]:
        if self.cache is not None and self.cache.covers(kind):
            return self.cache.list(kind, namespace, labels)
        query = []
        if labels:
            query.append(("labelSelector", ",".join(f"{k}={v}" for k, v in labels.items())))
        result = self.request("GET", KINDS[kind].path(namespace), query=query)
        items: list[Manifest] = result.get("items", [])
        return items

    def apply(self, manifest: Manifest) -> Manifest:
        """Server-side apply; the operator wins conflicts on the fields it sets. Not sent
        when the object held already has it (the held object is returned)."""
        desired = stamped(manifest)
        held = self.held(desired)
        if held is not None and unchanged(held, desired):
            return held
        result = self._apply(desired)
        self._remember(result)
        return result

    def held(self, manifest: Manifest) -> Manifest | None:
        """The object as the cache holds it; None when absent or not cached."""
        kind, meta = manifest["kind"], manifest["metadata"]
        if self.cache is None or not self.cache.ready or not self.cache.keeps(kind):
            return None
        return self.cache.get(kind, meta.get("namespace"), meta["name"])

    def _remember(self, answer: Manifest | None) -> None:
        """Keep the API server's answer to a write, so the next read sees the write."""
        if self.cache is not None and answer and self.cache.keeps(str(answer.get("kind"))):
            self.cache.store(answer["kind"], answer)

    def _apply(self, manifest: Manifest) -> Manifest:
        kind = KINDS[manifest["kind"]]
        meta = manifest["metadata"]
        result: Manifest = self.request(
            "PATCH",
            kind.path(meta.get("namespace"), meta["name"]),
            body=manifest,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )
        return result

    def apply_status(self, kind: str, namespace: str, name: str, status: Manifest) -> None:
        """Server-side apply of the status subresource: fields left out are removed."""
        k = KINDS[kind]
        body = {
            "apiVersion": k.api_version,
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
            "status": status,
        }
        answer = self.request(
            "PATCH",
            k.path(namespace, name, "status"),
            body=body,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )
        self._remember(answer)

    def create(self, manifest: Manifest) -> None:
        """Create an object; an existing one with the same name is left alone."""
        kind, meta = KINDS[manifest["kind"]], manifest["metadata"]
        try:
            self.request("POST", kind.path(meta.get("namespace")), body=manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise

    def merge_patch(self, kind: str, namespace: str, name: str, patch: Manifest) -> None:
        answer = self.request(
            "PATCH",
            KINDS[kind].path(namespace, name),
            body=patch,
            content_type="application/merge-patch+json",
        )
        self._remember(answer)

    def whoami(self) -> tuple[str, tuple[str, ...]]:
        """The user name and groups the API server authenticated this client as."""
        review = self.request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        user = (review.get("status") or {}).get("userInfo") or {}
        return str(user.get("username", "")), tuple(str(g) for g in user.get("groups") or [])

    def delete(self, kind: str, namespace: str, name: str) -> None:
        if self.cache is not None:
            self.cache.forget(kind, namespace, name)
        try:
            self.request(
                "DELETE",
                KINDS[kind].path(namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
