"""The coordination.k8s.io Lease the operator's replicas elect a leader with: reads and
optimistic writes only; the election rule is in coalmine.leadership."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from coalmine.kube.client import Kind, Kube, Manifest

LEASES = Kind("coordination.k8s.io", "v1", "leases")


def read(kube: Kube, namespace: str, name: str, timeout: float) -> Manifest | None:
    """The Lease, or None when there is none yet."""
    try:
        lease: Manifest = kube.request("GET", LEASES.path(namespace, name), timeout=timeout)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return lease


def write(
    kube: Kube,
    namespace: str,
    name: str,
    spec: dict[str, Any],
    resource_version: str | None,
    timeout: float,
) -> bool:
    """Create the Lease (no version) or replace the version read; False when another
    replica wrote first (a conflict), which means it won."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    body = {"apiVersion": LEASES.api_version, "kind": "Lease", "metadata": meta, "spec": spec}
    try:
        if resource_version is None:
            kube.request("POST", LEASES.path(namespace), body=body, timeout=timeout)
        else:
            meta["resourceVersion"] = resource_version
            kube.request("PUT", LEASES.path(namespace, name), body=body, timeout=timeout)
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise
    return True


def release(kube: Kube, namespace: str, name: str, identity: str, timeout: float) -> bool:
    """Empty the holder, so the next replica takes the Lease without waiting it out.

    An optimistic replace of the version read, as client-go releases, so it needs only the
    verbs the election already has (get, update), and never clears a Lease that another
    replica took meanwhile; False when the Lease is not ours (any more)."""
    found = read(kube, namespace, name, timeout)
    if found is None or (found.get("spec") or {}).get("holderIdentity") != identity:
        return False
    spec = {k: v for k, v in found["spec"].items() if k != "holderIdentity"}
    version = found["metadata"]["resourceVersion"]
    return write(kube, namespace, name, spec, version, timeout)
