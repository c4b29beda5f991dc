"""What the stable pods saw of a canary in shadow steps, for `coalmine report`.

The comparison's details stay on the stable pods (docs/shadow.md): the confusion of
classes and the last disagreeing rows, with their inputs, are read from each ready
stable pod through the API server's pod proxy when someone asks for a report, and are
never written to status. `merge` is pure; `fetch` does the reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from coalmine.kube.client import Kube
from coalmine.kube.observe import is_ready
from coalmine.resources.deployment import PORT
from coalmine.resources.naming import DEPLOYMENT_LABEL, VARIANT_LABEL

MAX_EXAMPLES = 10
PROXY_TIMEOUT = 5.0


@dataclass(frozen=True)
class ShadowView:
    """The stable pods' comparison with one canary ModelVersion."""

    canary: str
    pods: int
    """Stable pods whose figures are summed here."""
    compared: int = 0
    agreeing: int = 0
    confusion: dict[tuple[str, str], int] = field(default_factory=dict)
    examples: tuple[dict[str, Any], ...] = ()
    """The newest disagreeing rows first: time, inputs, stable's and the canary's answer."""
    unread: tuple[str, ...] = ()
    """Why some stable pods could not be read."""


def merge(canary: str, reports: list[dict[str, Any]], unread: list[str]) -> ShadowView | None:
    """Sum the pods' mirror reports for `canary`; None when no pod compared anything for it
    (and none failed to answer), so a rollout without shadow steps shows no section."""
    compared = agreeing = pods = 0
    confusion: dict[tuple[str, str], int] = {}
    examples: list[dict[str, Any]] = []
    for report in reports:
        figures = (report.get("canaries") or {}).get(canary)
        if not isinstance(figures, dict):
            continue
        pods += 1
        compared += int(figures.get("compared", 0))
        agreeing += int(figures.get("agreeing", 0))
        for stable, answer, count in figures.get("confusion") or []:
            key = (str(stable), str(answer))
            confusion[key] = confusion.get(key, 0) + int(count)
        examples += [e for e in report.get("examples") or [] if e.get("canary") == canary]
    if not pods and not unread:
        return None
    newest = sorted(examples, key=lambda e: float(e.get("time", 0)), reverse=True)
    return ShadowView(
        canary,
        pods,
        compared,
        agreeing,
        confusion,
        tuple(newest[:MAX_EXAMPLES]),
        tuple(unread),
    )


def fetch(kube: Kube, namespace: str, name: str, canary: str) -> ShadowView | None:
    """Read every ready stable pod of ModelDeployment `name` through the pod proxy (which
    needs `list` on pods and `get` on pods/proxy: without them the view says so)."""
    try:
        pods = kube.list("Pod", namespace, {DEPLOYMENT_LABEL: name, VARIANT_LABEL: "stable"})
    except ApiException as exc:
        return merge(canary, [], [f"the stable pods: {exc.reason}"])
    reports: list[dict[str, Any]] = []
    unread: list[str] = []
    for pod in pods:
        if not is_ready(pod):
            continue
        pod_name = pod["metadata"]["name"]
        path = (
            f"/api/v1/namespaces/{namespace}/pods/{pod_name}:{PORT}/proxy/v2/models/{name}/mirror"
        )
        try:
            reports.append(kube.request("GET", path, timeout=PROXY_TIMEOUT))
        except Exception as exc:  # one pod's answer missing must not lose the report
            unread.append(f"{pod_name}: {getattr(exc, 'reason', None) or exc}")
    return merge(canary, reports, unread)
