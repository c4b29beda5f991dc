"""Helm, built from Go modules by hack/helm/build.sh, driven against the test cluster."""

from __future__ import annotations

import functools
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.support.cluster import REPO, Cluster
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
