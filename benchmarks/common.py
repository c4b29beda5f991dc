"""What every cluster benchmark starts from: the cluster, Coalmine's CRDs, trained models."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.support.cluster import Cluster, find_or_start_cluster
from tests.support.crds import install_crds
from tests.support.models import train


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
