"""Install Coalmine's generated CRDs into the test cluster."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.cluster import REPO, Cluster, wait_for


def crd_names() -> list[str]:
    return [
        yaml.safe_load(path.read_text())["metadata"]["name"]
        for path in sorted((REPO / "crds").glob("*.yaml"))
    ]


def install_crds(cluster: Cluster) -> None:
    """Server-side apply of crds/ and wait until every CRD is Established."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    names = [f"crd/{name}" for name in crd_names()]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)


def apply_established(cluster: Cluster, path: Path) -> None:
    """Server-side apply the CRDs under `path` (a file or folder) and wait until each is
    Established: objects of a kind applied before that are refused ("no matches for kind"),
    as Argo CD's AppProject once was in CI."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))

    def established() -> bool:
        # Asked again: a CRD read before the API server wrote its first condition makes
        # `kubectl wait -f` fail at once (".status.conditions accessor error"), as in CI.
        proc = cluster.kubectl(
            "wait", "--for=condition=Established", "--timeout=10s", "-f", str(path), check=False
        )
        return proc.returncode == 0

    wait_for(f"the CRDs of {path.name} to be Established", established, timeout=60, interval=2)


def apply_once_mapped(cluster: Cluster, path: Path, timeout: float = 60) -> None:
    """Server-side apply `path`, again until it goes through: kubectl may still map a kind
    whose CRD was just Established from discovery it read before ("no matches for kind")."""
    last: list[str] = []

    def applied() -> bool:
        proc = cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", str(path), check=False
        )
        last[:] = [proc.stderr.strip()]
        return proc.returncode == 0

    try:
        wait_for(f"{path.name} to apply", applied, timeout=timeout, interval=2)
    except Exception as exc:
        raise RuntimeError(f"kubectl apply -f {path} kept failing: {last}") from exc
