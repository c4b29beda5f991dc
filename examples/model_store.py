"""A model store for the local cluster: a hostPath PersistentVolume + the claim
`coalmine-models`, so ModelVersions can say `pvc://coalmine-models/NAME.skops`.

The artifacts (from examples/train.py) are copied to /var/lib/coalmine-models/NAMESPACE
on the node (the local cluster's node is this host) and exposed read-only.

    python examples/model_store.py up NAMESPACE MODELS_DIR   # copy, create PV + PVC, wait Bound
    python examples/model_store.py down NAMESPACE            # delete the PV and the copies
    python examples/model_store.py manifests NAMESPACE       # print the PV + PVC YAML

Importable too (`provide`, `remove`, `manifests`); kubectl is whatever callable runs it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

CLAIM = "coalmine-models"
HOST_ROOT = Path("/var/lib/coalmine-models")

Kubectl = Callable[..., str]
"""kubectl(*args, input=None) -> stdout; raises when kubectl fails."""


def pv_name(namespace: str) -> str:
    return f"coalmine-models-{namespace}"


def manifests(namespace: str, folder: Path | None = None) -> list[dict[str, Any]]:
    """The PersistentVolume over `folder` and the claim bound to it in `namespace`."""
    folder = folder or HOST_ROOT / namespace
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv_name(namespace), "labels": {"coalmine.dev/store": "models"}},
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
                "volumeName": pv_name(namespace),
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    ]


def copy_artifacts(namespace: str, trained: Path) -> Path:
    """Copy every *.skops of `trained` where the PV serves them from; returns the folder."""
    folder = HOST_ROOT / namespace
    folder.mkdir(parents=True, exist_ok=True)
    HOST_ROOT.chmod(0o755)
    folder.chmod(0o755)
    artifacts = sorted(trained.glob("*.skops"))
    if not artifacts:
        raise FileNotFoundError(f"no *.skops in {trained}: run examples/train.py --out {trained}")
    for artifact in artifacts:
        shutil.copy2(artifact, folder / artifact.name)
        (folder / artifact.name).chmod(0o644)
    return folder


def provide(kubectl: Kubectl, namespace: str, trained: Path, timeout: float = 60) -> None:
    """Copy the artifacts, create the PV and claim, and wait until the claim is Bound."""
    folder = copy_artifacts(namespace, trained)
    kubectl(
        "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(manifests(namespace, folder))
    )
    deadline = time.monotonic() + timeout
    while True:
        phase = kubectl(
            "-n", namespace, "get", "pvc", CLAIM, "-o", "jsonpath={.status.phase}"
        ).strip()
        if phase == "Bound":
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"claim {namespace}/{CLAIM} not Bound after {timeout:.0f}s: {phase}")
        time.sleep(1)


def remove(kubectl: Kubectl, namespace: str) -> None:
    """Delete the PV (the claim goes with its namespace) and the copied artifacts."""
    kubectl("delete", "pv", pv_name(namespace), "--ignore-not-found", "--wait=false")
    shutil.rmtree(HOST_ROOT / namespace, ignore_errors=True)


def _kubectl(binary: str) -> Kubectl:
    def run(*args: str, input: str | None = None) -> str:
        proc = subprocess.run(
            [binary, *args], input=input, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubectl", default="kubectl", help="kubectl binary (uses KUBECONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up")
    up.add_argument("namespace")
    up.add_argument("models", type=Path)
    sub.add_parser("down").add_argument("namespace")
    sub.add_parser("manifests").add_argument("namespace")
    args = parser.parse_args(argv)
    kubectl = _kubectl(args.kubectl)
    if args.command == "up":
        provide(kubectl, args.namespace, args.models)
        print(f"claim {args.namespace}/{CLAIM} is Bound over {HOST_ROOT / args.namespace}")
    elif args.command == "down":
        remove(kubectl, args.namespace)
    else:
        print(yaml.safe_dump_all(manifests(args.namespace)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
