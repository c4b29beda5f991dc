"""Helm, built from Go modules by hack/helm/build.sh, driven against the test cluster."""

from __future__ import annotations

import contextlib
import functools
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.cluster import REPO, Cluster, ensure_namespace
from tests.support.gateway import install_gateway_api_crds
from tests.support.steps import LOGS, run_step, to_stderr

CHART = REPO / "charts" / "coalmine"
HELM_DIR = REPO / "hack" / "helm"


@functools.cache
def helm_bin(say: Callable[[str], None] = to_stderr) -> str:
    """The cached helm binary (built on first use, about 3 minutes; progress to `say`)."""
    out = run_step(
        "building helm", [str(HELM_DIR / "build.sh")], log=LOGS / "helm-build.log", say=say
    )
    return out.strip().splitlines()[-1]


def helm(
    *args: str, cluster: Cluster | None = None, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run helm (against `cluster` when given); raise with its output when `check` fails."""
    cmd = [helm_bin(), *args]
    if cluster is not None:
        cmd += ["--kubeconfig", str(cluster.kubeconfig)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"helm {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}")
    return proc


def values_args(values: dict[str, Any], tmp: Path) -> list[str]:
    """`--values FILE` for a values dict (an empty dict gives the chart's defaults)."""
    if not values:
        return []
    path = tmp / f"values-{abs(hash(yaml.safe_dump(values)))}.yaml"
    path.write_text(yaml.safe_dump(values))
    return ["--values", str(path)]


def template(
    values: dict[str, Any],
    namespace: str = "coalmine-system",
    release: str = "coalmine",
    extra: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """`helm template` of the chart with `values` (and `extra` flags), as manifests."""
    with tempfile.TemporaryDirectory() as tmp:
        out = helm(
            "template",
            release,
            str(CHART),
            "--namespace",
            namespace,
            *values_args(values, Path(tmp)),
            *extra,
        ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@dataclass
class Release:
    """A release of the chart in namespaced mode: the operator in one namespace, watching
    only another, so it never touches what other tests (or a host-process operator) own."""

    name: str
    namespace: str  # where the operator runs
    watched: str  # the only namespace it watches
    tmp: Path

    @property
    def fullname(self) -> str:
        return f"{self.name}-coalmine"

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}"

    @property
    def selector(self) -> str:
        """The label selector of the operator's pods."""
        return f"app.kubernetes.io/instance={self.name}"

    def values(self, **extra: Any) -> dict[str, Any]:
        return {"watchNamespaces": [self.watched], "crds": {"install": False}, **extra}

    def helm(self, command: str, values: dict[str, Any], cluster: Cluster) -> None:
        helm(
            command, self.name, str(CHART), "--namespace", self.namespace,
            "--wait", "--timeout", "5m", *values_args(values, self.tmp), cluster=cluster,
        )  # fmt: skip


@contextlib.contextmanager
def installed_release(
    cluster: Cluster, labels: Iterable[tuple[str, str]] = ()
) -> Iterator[Release]:
    """`helm install` with the chart's defaults into fresh namespaces (`labels` on both);
    uninstalled and the namespaces deleted afterwards. The session installs the CRDs."""
    # The chart's RBAC names HTTPRoutes: kubectl's can-i answers "no" for a resource
    # the API server does not serve, so the Gateway API CRDs must be there.
    install_gateway_api_crds(cluster)
    suffix = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory() as tmp:
        rel = Release(f"cm-{suffix}", f"helm-op-{suffix}", f"helm-w-{suffix}", Path(tmp))
        try:
            for ns in (rel.namespace, rel.watched):
                ensure_namespace(cluster, ns, labels)
            rel.helm("install", rel.values(), cluster)
            yield rel
        finally:
            helm("uninstall", rel.name, "-n", rel.namespace, cluster=cluster, check=False)
            for ns in (rel.namespace, rel.watched):
                cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
