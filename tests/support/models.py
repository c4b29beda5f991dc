"""Example model artifacts, made available to pods through a PersistentVolumeClaim.

The artifacts are trained by `examples/train.py` into a host folder that a
hostPath PersistentVolume exposes; the serving pods mount the claim, so the
ModelVersions use `pvc://coalmine-models/NAME.skops` like a user's would.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from examples import model_store
from tests.support.cluster import REPO, Cluster
from tests.support.steps import run_step

CLAIM = model_store.CLAIM
HOST_ROOT = model_store.HOST_ROOT


def train(out: Path) -> bool:
    """Train the example versions into `out` unless they are there; True when it trained."""
    if (out / "modelversions.yaml").exists():
        return False
    run_step(
        "training the example models",
        [sys.executable, str(REPO / "examples" / "train.py"), "--out", str(out),
         "--uri-prefix", f"pvc://{CLAIM}/"],
        log=out.parent / f"train-{out.name}.log",
        timeout=900,
    )  # fmt: skip
    return True


def model_versions(out: Path) -> dict[str, dict[str, Any]]:
    docs = yaml.safe_load_all((out / "modelversions.yaml").read_text())
    return {d["metadata"]["name"]: d for d in docs}


def _kubectl(cluster: Cluster) -> model_store.Kubectl:
    def run(*args: str, input: str | None = None) -> str:
        return cluster.kubectl(*args, input=input).stdout

    return run


def provide_models(cluster: Cluster, namespace: str, trained: Path) -> dict[str, dict[str, Any]]:
    """Serve the artifacts through the example model store and bind its claim in `namespace`."""
    if cluster.kind != "local":
        raise RuntimeError("hostPath model volumes need the local cluster (node = this host)")
    model_store.provide(_kubectl(cluster), namespace, trained)
    versions = model_versions(trained)
    for doc in versions.values():
        doc["metadata"]["namespace"] = namespace
    return versions


def remove_models(cluster: Cluster, namespace: str) -> None:
    model_store.remove(_kubectl(cluster), namespace)
