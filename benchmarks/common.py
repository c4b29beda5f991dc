"""What every cluster benchmark starts from: the cluster, Coalmine's CRDs, trained models."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.support.cluster import Cluster, find_or_start_cluster, wait_for
from tests.support.crds import install_crds
from tests.support.models import remove_models, train


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages: printed beside every figure."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def prepare() -> tuple[Cluster, Path]:
    """The cluster (CRDs applied only when missing: others may run newer ones) and the
    example artifacts, trained once into a temporary folder shared by the benchmarks."""
    cluster = find_or_start_cluster()
    if cluster.kubectl("get", "crd", "modeldeployments.coalmine.dev", check=False).returncode:
        install_crds(cluster)
    trained = Path(tempfile.gettempdir()) / "coalmine-bench-models"
    trained.mkdir(exist_ok=True)
    train(trained)
    return cluster, trained


def clean_up(cluster: Cluster, namespace: str, timeout: float) -> None:
    """Delete a benchmark's namespace, wait until it is gone, and drop its model store:
    the next run must not share a loaded node with this one's leftovers."""
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    wait_for(
        "the namespace to be gone",
        lambda: cluster.kubectl("get", "namespace", namespace, check=False).returncode != 0,
        timeout=timeout,
        interval=2,
    )
    remove_models(cluster, namespace)
