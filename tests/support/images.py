"""Build the project's images once per test session and load them into the cluster."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.cluster import REPO, Cluster

IMAGES = REPO / "_out" / "images"


def build_and_load(cluster: Cluster, target: str, archive: str) -> None:
    """Run `make TARGET` (cached when nothing changed) and import its archive."""
    subprocess.run(["make", "-s", target], cwd=REPO, check=True)
    path: Path = IMAGES / archive
    cluster.load_image(path)
