"""Example model artifacts, made available to pods through a PersistentVolumeClaim.

The artifacts are trained by `examples/train.py` into a host folder that a
hostPath PersistentVolume exposes; the serving pods mount the claim, so the
ModelVersions use `pvc://coalmine-models/NAME.skops` like a user's would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.cluster import REPO, Cluster, wait_for

CLAIM = "coalmine-models"
HOST_ROOT = Path("/var/lib/coalmine-models")


def train(out: Path) -> None:
    if (out / "modelversions.yaml").exists():
        return
    subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "train.py"),
            "--out",
            str(out),
            "--uri-prefix",
            f"pvc://{CLAIM}/",
        ],
        check=True,
    )


def model_versions(out: Path) -> dict[str, dict[str, Any]]:
    docs = yaml.safe_load_all((out / "modelversions.yaml").read_text())
    return {d["metadata"]["name"]: d for d in docs}


def provide_models(cluster: Cluster, namespace: str, trained: Path) -> dict[str, dict[str, Any]]:
    """Copy the artifacts where a PV can serve them and bind the claim in `namespace`."""
    if cluster.kind != "local":
        raise RuntimeError("hostPath model volumes need the local cluster (node = this host)")
    folder = HOST_ROOT / namespace
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    HOST_ROOT.chmod(0o755)
    for artifact in trained.glob("*.skops"):
        shutil.copy2(artifact, folder / artifact.name)
        (folder / artifact.name).chmod(0o644)
    pv_name = f"coalmine-models-{namespace}"
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv_name, "labels": {"coalmine.dev/test": "models"}},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadOnlyMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": str(folder), "type": "Directory"},
                "claimRef": {"namespace": namespace, "name": CLAIM},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": CLAIM, "namespace": namespace},
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "",
                "volumeName": pv_name,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    wait_for(
        "the model claim to bind",
        lambda: cluster.get("pvc", CLAIM, namespace)["status"].get("phase") == "Bound",
        timeout=60,
    )
    versions = model_versions(trained)
    for doc in versions.values():
        doc["metadata"]["namespace"] = namespace
    return versions


def remove_models(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("delete", "pv", f"coalmine-models-{namespace}", "--wait=false", check=False)
    shutil.rmtree(HOST_ROOT / namespace, ignore_errors=True)
