"""Build the project's images once per test session and load them into the cluster."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.cluster import REPO, Cluster
from tests.support.steps import LOGS, run_step, to_stderr

IMAGES = REPO / "_out" / "images"


def build(target: str, archive: str, say: Callable[[str], None] = to_stderr) -> Path:
    """Run `make TARGET` (cached when nothing changed), its progress to `say`; the archive."""
    run_step(f"make {target}", ["make", "-s", target], log=LOGS / f"{target}.log", say=say)
    return IMAGES / archive


def build_and_load(
    cluster: Cluster, target: str, archive: str, say: Callable[[str], None] = to_stderr
) -> None:
    """Build the image of `make TARGET` and import its archive into the cluster."""
    cluster.load_image(build(target, archive, say), say)


def build_with_manifests(tool: str, say: Callable[[str], None] = to_stderr) -> Path:
    """Run hack/TOOL/build.sh (images from Go modules, cached after the first build); the
    directory of the manifests it lays out, which its last line names."""
    out = run_step(
        f"hack/{tool}/build.sh",
        ["bash", str(REPO / "hack" / tool / "build.sh")],
        log=LOGS / f"image-{tool}.log",
        say=say,
        timeout=3600,
    )
    return Path(out.strip().splitlines()[-1])
