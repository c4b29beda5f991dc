"""Find or start the Kubernetes cluster the tests run against.

Which one: `COALMINE_TEST_CLUSTER=kind` asks for kind, through pytest-kind's
`KindCluster` with a kind binary built from Go modules (hack/kind/build.sh), so
pytest-kind downloads nothing; it needs a Docker engine and kind's node image.
`COALMINE_TEST_CLUSTER=local` asks for the offline local cluster of
`hack/localcluster`. Unset: the cluster `KUBECONFIG` names, else the local
cluster, started once per test session. Tests only see `Cluster`.

The demo (hack/demo/demo.py) and the benchmarks drive clusters with the same handle and
the same waits: `wait_for` polls, and stops at once on a `PermanentError` (something that
cannot heal, such as a ModelVersion that turned Invalid).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pytest_kind import KindCluster

from tests.support.steps import LOGS, run_step, to_stderr

REPO = Path(__file__).resolve().parents[2]
LOCALCLUSTER = REPO / "hack" / "localcluster"
CLUSTER_ENV = "COALMINE_TEST_CLUSTER"
KIND_NAME = "coalmine-test"


@dataclass
class Cluster:
    """A reachable cluster and the tools to drive it."""

    kubeconfig: Path
    kind: str  # "kubeconfig", "kind" or "local"
    kubectl_bin: str = "kubectl"
    env: dict[str, str] = field(default_factory=dict)
    kind_cluster: KindCluster | None = None  # pytest-kind's handle on the kind path

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; raise with its stderr when `check` fails."""
        proc = subprocess.run(
            [self.kubectl_bin, "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self.env},
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}")
        return proc

    @classmethod
    def at(cls, kubeconfig: Path) -> Cluster:
        """The cluster `kubeconfig` names; the local cluster's own kubeconfig is "local"."""
        local = kubeconfig.resolve() == local_kubeconfig().resolve()
        return cls(kubeconfig, "local" if local else "kubeconfig", kubectl_binary())

    def apply(
        self, *docs: dict[str, Any], namespace: str | None = None, force: bool = False
    ) -> None:
        """Server-side apply of manifests given as dicts (`force`: take over conflicts)."""
        ns = ["-n", namespace] if namespace else []
        forced = ["--force-conflicts"] if force else []
        self.kubectl(
            "apply", "--server-side", *forced, *ns, "-f", "-", input=yaml.safe_dump_all(docs)
        )

    def apply_file(self, path: Path, namespace: str, force: bool = False) -> None:
        """Server-side apply of a manifest file, as a user's `kubectl apply -f` would."""
        forced = ["--force-conflicts"] if force else []
        self.kubectl("apply", "--server-side", *forced, "-n", namespace, "-f", str(path))

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        ns = ["-n", namespace] if namespace else []
        out = self.kubectl("get", kind, name, *ns, "-o", "json").stdout
        result: dict[str, Any] = json.loads(out)
        return result

    def find(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """Like `get`, but None when there is no such object."""
        ns = ["-n", namespace] if namespace else []
        out = self.kubectl("get", kind, name, *ns, "-o", "json", "--ignore-not-found").stdout
        return json.loads(out) if out.strip() else None

    def ready(self) -> bool:
        """The API server answers /readyz."""
        proc = self.kubectl("get", "--raw", "/readyz", check=False, timeout=20)
        return proc.returncode == 0

    def wait_ready(self, ref: str, namespace: str, timeout: int = 180) -> None:
        """`kubectl wait` until `ref` (kind/name) has condition Ready=True."""
        wait = ("wait", "--for=condition=Ready", ref, f"--timeout={timeout}s")
        self.kubectl("-n", namespace, *wait, timeout=timeout + 10)

    def load_image(self, archive: Path, say: Callable[[str], None] = to_stderr) -> None:
        """Import an image archive (docker-archive or OCI tar) into the cluster's runtime."""
        if self.kind_cluster is not None:
            kc = self.kind_cluster
            load = [str(kc.kind_path), "load", "image-archive", "--name", kc.name, str(archive)]
            subprocess.run(load, check=True)
        elif self.kind == "local":
            run_step(
                f"loading {archive.name}",
                [str(LOCALCLUSTER / "load-image.sh"), str(archive)],
                log=LOGS / f"load-{archive.stem}.log",
                say=say,
                timeout=600,
            )
        else:
            raise RuntimeError(
                "cannot load a local image into a cluster given by KUBECONFIG; "
                "preload it there or unset KUBECONFIG to use the local cluster"
            )


class PermanentError(RuntimeError):
    """What a wait is for can no longer happen (e.g. the ModelVersion is Invalid):
    `wait_for` stops at once with it instead of polling until its timeout."""


class WaitTimeout(AssertionError):
    """`wait_for` ran out of time; the message says what it waited for."""


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 120, interval: float = 0.5
) -> Any:
    """Poll `check` until it returns a truthy value; fail with `what` after `timeout`.

    Errors from `check` are retried (the last one is reported on timeout), except a
    `PermanentError`, which is raised at once.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except PermanentError:
            raise
        except Exception as exc:  # keep polling; report the last error on timeout
            last_error = exc
        time.sleep(interval)
    raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}: {last_error!r}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def kubectl_binary() -> str:
    """The local cluster's kubectl when it has been built, else `kubectl` on PATH."""
    version = (LOCALCLUSTER / "versions.env").read_text()
    kube = next(
        line.split("=", 1)[1] for line in version.splitlines() if line.startswith("KUBE_VERSION=")
    )
    cache = Path(
        os.environ.get("COALMINE_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "coalmine"
    )
    built = cache / f"kubernetes-{kube}" / "bin" / "kubectl"
    return str(built) if built.exists() else "kubectl"


def local_kubeconfig() -> Path:
    state = os.environ.get("COALMINE_CLUSTER_DIR", "/var/lib/coalmine-cluster")
    return Path(state) / "admin.kubeconfig"


def choose_cluster(env: Mapping[str, str]) -> str:
    """Which cluster the tests use: "kind", "local" or "kubeconfig" (pure)."""
    wanted = env.get(CLUSTER_ENV, "")
    if wanted not in ("", "kind", "local"):
        raise ValueError(f"{CLUSTER_ENV} must be kind or local, not {wanted!r}")
    return wanted or ("kubeconfig" if env.get("KUBECONFIG") else "local")


def kind_missing() -> str | None:
    """Why the kind path cannot run here, or None when a Docker engine answers."""
    if shutil.which("docker") is None:
        return "no docker CLI (kind runs its node as a Docker container)"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        return "no Docker engine answers `docker info`"
    return None


def kind_binary() -> Path:
    """kind built from Go modules (hack/kind/build.sh, cached after the first build)."""
    out = subprocess.run(
        [str(REPO / "hack" / "kind" / "build.sh")], capture_output=True, text=True, check=True
    ).stdout
    return Path(out.strip().splitlines()[-1])


def kind_cluster(kind: Path, kubectl: Path, state: Path) -> KindCluster:
    """pytest-kind's handle, given our binaries so that it downloads neither."""
    state.mkdir(parents=True, exist_ok=True)
    return KindCluster(
        KIND_NAME, kubeconfig=state / "kubeconfig", kind_path=kind, kubectl_path=kubectl
    )


def start_kind() -> Cluster:
    reason = kind_missing()
    if reason is not None:
        raise RuntimeError(f"{CLUSTER_ENV}=kind, but {reason}; unset it for the local cluster")
    kubectl = kubectl_binary()
    kubectl_path = Path(shutil.which(kubectl) or kubectl)
    kc = kind_cluster(kind_binary(), kubectl_path, REPO / "_out" / "kind")
    kc.create()  # re-uses a running cluster of that name; `kind delete cluster --name ...`
    return Cluster(Path(kc.kubeconfig_path), "kind", str(kubectl_path), kind_cluster=kc)


def find_or_start_cluster() -> Cluster:
    choice = choose_cluster(os.environ)
    if choice == "kind":
        return start_kind()
    if choice == "kubeconfig":
        # The local cluster named explicitly is still the local cluster (images load).
        return Cluster.at(Path(os.environ["KUBECONFIG"]))
    subprocess.run([str(LOCALCLUSTER / "up.sh")], check=True)
    out = subprocess.run(
        [str(LOCALCLUSTER / "status.sh"), "--kubeconfig"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Cluster(Path(out), "local", kubectl_binary())


def ensure_namespace(cluster: Cluster, name: str, labels: Iterable[tuple[str, str]] = ()) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": dict(labels)},
        }
    )
