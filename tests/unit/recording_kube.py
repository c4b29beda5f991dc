"""A recording fake of the kube layer, for unit tests of what a reconcile writes and in what
order: objects live in a dict, Deployments converge at once (every pod ready), and every write
is appended to `writes`. It stands in for the API server only where the order and number of
writes are the question; what the API server does with them is the e2e tests' part."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from coalmine.kube.cache import matches
from coalmine.kube.client import Kube

Key = tuple[str, str | None, str]


@dataclass(frozen=True)
class Write:
    verb: str  # apply, apply_status, merge_patch, create, delete
    kind: str
    name: str
    body: dict[str, Any]

    def replicas(self) -> int | None:
        value = self.body.get("spec", {}).get("replicas")
        return None if value is None else int(value)

    def selector(self) -> dict[str, str]:
        selector: dict[str, str] = self.body.get("spec", {}).get("selector", {})
        return selector


class RecordingKube(Kube):
    def __init__(self) -> None:
        super().__init__(client.ApiClient())
        self.objects: dict[Key, dict[str, Any]] = {}
        self.writes: list[Write] = []

    def put(self, obj: dict[str, Any]) -> None:
        """Place an object as if someone else had created it (not recorded)."""
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta.get("namespace"), meta["name"])] = copy.deepcopy(obj)

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def list(
        self, kind: str, namespace: str | None, labels: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(o)
            for (k, ns, _), o in self.objects.items()
            if k == kind and ns == namespace and matches(o["metadata"].get("labels", {}), labels)
        ]

    def held(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """The fake's objects stand for a watch cache that is always current."""
        meta = manifest["metadata"]
        return self.get(manifest["kind"], meta.get("namespace"), meta["name"])

    def _apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        meta = manifest["metadata"]
        key = (manifest["kind"], meta.get("namespace"), meta["name"])
        self.writes.append(Write("apply", manifest["kind"], meta["name"], copy.deepcopy(manifest)))
        old = self.objects.get(key)
        obj = copy.deepcopy(manifest)
        generation = (old or {}).get("metadata", {}).get("generation", 0)
        changed = old is None or old.get("spec") != obj.get("spec")
        obj["metadata"]["generation"] = generation + 1 if changed else generation
        obj["status"] = (old or {}).get("status", {})
        if manifest["kind"] == "Deployment":
            self._converge(obj)
        self.objects[key] = obj
        return copy.deepcopy(obj)

    def _converge(self, dep: dict[str, Any]) -> None:
        replicas = int(dep["spec"].get("replicas", 1))
        dep["status"] = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
        }

    def apply_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.writes.append(Write("apply_status", kind, name, {"status": copy.deepcopy(status)}))
        self.objects[(kind, namespace, name)]["status"] = copy.deepcopy(status)

    def merge_patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.writes.append(Write("merge_patch", kind, name, copy.deepcopy(patch)))
        obj = self.objects[(kind, namespace, name)]
        obj["spec"].update(patch.get("spec", {}))
        if kind == "Deployment":
            self._converge(obj)

    def create(self, manifest: dict[str, Any]) -> None:
        meta = manifest["metadata"]
        self.writes.append(Write("create", manifest["kind"], meta["name"], manifest))
        self.objects.setdefault((manifest["kind"], meta.get("namespace"), meta["name"]), manifest)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.writes.append(Write("delete", kind, name, {}))
        self.objects.pop((kind, namespace, name), None)
