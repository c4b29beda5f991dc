"""The chart's operator replicas: which one leads (the Lease's holder), and killing it the
way a crash or the OOM killer would, from the host."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.cluster import Cluster, wait_for

PROC = Path("/proc")


@dataclass(frozen=True)
class Leader:
    identity: str  # the Lease's holderIdentity: the pod's name, "-", a nonce per start
    pod: dict[str, Any]

    @property
    def pod_name(self) -> str:
        name: str = self.pod["metadata"]["name"]
        return name


def holder(cluster: Cluster, namespace: str, lease: str) -> str | None:
    """The Lease's holder identity, None while nobody holds it (or it does not exist)."""
    body = cluster.find("lease", lease, namespace)
    spec = (body or {}).get("spec") or {}
    identity: str | None = spec.get("holderIdentity") or None
    return identity


def pods(cluster: Cluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    """The operator pods that are not being deleted."""
    out = cluster.kubectl("-n", namespace, "get", "pods", "-o", "json", "-l", selector).stdout
    listed: list[dict[str, Any]] = json.loads(out)["items"]
    return [p for p in listed if not p["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def leader(
    cluster: Cluster, namespace: str, lease: str, selector: str, timeout: float = 60
) -> Leader:
    """The replica holding `lease`, once one does."""

    def held() -> Leader | None:
        identity = holder(cluster, namespace, lease)
        if identity is None:
            return None
        name = identity.rsplit("-", 1)[0]
        found = [p for p in pods(cluster, namespace, selector) if p["metadata"]["name"] == name]
        return Leader(identity, found[0]) if found else None

    return wait_for(f"a leader of lease {namespace}/{lease}", held, timeout=timeout)


def container_pids(pod: dict[str, Any], container: str) -> list[int]:
    """Host PIDs of `container`'s processes in `pod`: its cgroup path names the container."""
    (status,) = [s for s in pod["status"]["containerStatuses"] if s["name"] == container]
    container_id = status["containerID"].split("://", 1)[-1]
    found = []
    for cgroup in PROC.glob("[0-9]*/cgroup"):
        try:
            if container_id in cgroup.read_text():
                found.append(int(cgroup.parent.name))
        except OSError:  # the process ended while we looked
            continue
    return found


def sigkill(pod: dict[str, Any], container: str) -> None:
    """SIGKILL every process of the container, as a crash would end it: no clean shutdown,
    no Lease released. The kubelet then restarts the container."""
    pids = container_pids(pod, container)
    assert pids, f"no host process of {pod['metadata']['name']}/{container} (needs root)"
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # it ended since the scan
            os.kill(pid, signal.SIGKILL)
