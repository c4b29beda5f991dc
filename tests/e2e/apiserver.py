"""A second, throw-away Kubernetes API server: etcd + kube-apiserver on loopback.

For tests that need a cluster WITHOUT Coalmine's CRDs (the shared cluster has
them, and other tests rely on them). The binaries are the local cluster's
(hack/localcluster/build.sh, cached); the data lives in a temp folder; both
processes are stopped by PID. There is no node, controller-manager or
scheduler: objects are stored and admitted, no pod ever runs, and a deleted
namespace is never finalized.
"""

from __future__ import annotations

import secrets
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import yaml

from tests.support.cluster import LOCALCLUSTER, Cluster, free_port, kubectl_binary, wait_for


def _bin_dir() -> Path:
    kubectl = Path(kubectl_binary())
    if not kubectl.is_absolute():  # not built yet: the cached build is a no-op once done
        subprocess.run([str(LOCALCLUSTER / "build.sh")], check=True)
        kubectl = Path(kubectl_binary())
    return kubectl.parent


@contextmanager
def _process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@contextmanager
def second_apiserver(work: Path, *flags: str) -> Iterator[Cluster]:
    """Start etcd and kube-apiserver (with extra `flags`) under `work`; yield a `Cluster` of
    them (admin token)."""
    bins = _bin_dir()
    client, peer, secure = free_port(), free_port(), free_port()
    token = secrets.token_hex(16)
    (work / "tokens.csv").write_text(f"{token},admin,admin,system:masters\n")
    sa_key = work / "sa.key"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(sa_key), "2048"], check=True, capture_output=True
    )
    etcd_url = f"http://127.0.0.1:{client}"
    with ExitStack() as stack:
        stack.enter_context(
            _process(
                [
                    str(bins / "etcd"), "--name", "second", "--data-dir", str(work / "etcd"),
                    "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
                    "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                    "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                    "--initial-cluster", f"second=http://127.0.0.1:{peer}",
                    "--unsafe-no-fsync", "--log-level", "warn",
                ],
                work / "etcd.log",
            )
        )  # fmt: skip
        wait_for("the second etcd", lambda: urllib.request.urlopen(f"{etcd_url}/health", timeout=2))
        apiserver = stack.enter_context(
            _process(
                [
                    str(bins / "kube-apiserver"), "--etcd-servers", etcd_url,
                    "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
                    "--secure-port", str(secure), "--cert-dir", str(work / "certs"),
                    "--token-auth-file", str(work / "tokens.csv"),
                    "--authorization-mode", "RBAC",
                    "--service-account-issuer", "https://kubernetes.default.svc",
                    "--service-account-key-file", str(sa_key),
                    "--service-account-signing-key-file", str(sa_key),
                    "--service-cluster-ip-range", "10.96.0.0/16",
                    "--profiling=false",
                    *flags,
                ],
                work / "kube-apiserver.log",
            )
        )  # fmt: skip
        kubeconfig = work / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "second",
                            "cluster": {
                                "server": f"https://127.0.0.1:{secure}",
                                # Its serving certificate is self-signed into --cert-dir.
                                "insecure-skip-tls-verify": True,
                            },
                        }
                    ],
                    "users": [{"name": "admin", "user": {"token": token}}],
                    "contexts": [
                        {"name": "second", "context": {"cluster": "second", "user": "admin"}}
                    ],
                    "current-context": "second",
                }
            )
        )
        kubeconfig.chmod(0o600)
        cluster = Cluster(kubeconfig, "kubeconfig", str(bins / "kubectl"))

        def ready() -> bool:
            assert apiserver.poll() is None, (work / "kube-apiserver.log").read_text()[-3000:]
            return cluster.kubectl("get", "--raw", "/readyz", check=False).returncode == 0

        wait_for("the second kube-apiserver to be ready", ready, timeout=120)
        yield cluster
