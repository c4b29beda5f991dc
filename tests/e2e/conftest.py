"""Fixtures of the end-to-end tests: images in the cluster, CRDs, the operator, models."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.client import InClusterClient
from tests.support.cluster import Cluster, ensure_namespace
from tests.support.crds import install_crds
from tests.support.gitops import NODE_IP, Repository
from tests.support.gitserver import GitServer
from tests.support.images import build_and_load
from tests.support.models import provide_models, remove_models, train
from tests.support.operator import OperatorProcess
from tests.support.rollout import Rollout

TEST_HTTP_IMAGE = "coalmine/test-http:0.1.0"
RESTRICTED = [
    ("pod-security.kubernetes.io/enforce", "restricted"),
    ("pod-security.kubernetes.io/warn", "restricted"),
]


@pytest.fixture(scope="session")
def test_http_image(cluster: Cluster) -> str:
    """The tiny HTTP server used to prove the cluster itself works, and as a client."""
    build_and_load(cluster, "image-test-http", "coalmine-test-http.tar")
    return TEST_HTTP_IMAGE


@pytest.fixture(scope="session")
def serving_image(cluster: Cluster) -> None:
    """The model server image, built offline and loaded into the cluster."""
    build_and_load(cluster, "image-serving", "coalmine-serving.tar")


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> None:
    install_crds(cluster)


@pytest.fixture(scope="session")
def operator(
    cluster: Cluster, crds: None, serving_image: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator, run as a process with the cluster's admin credentials."""
    proc = OperatorProcess(cluster, tmp_path_factory.mktemp("operator"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Example artifacts trained once per session (examples/train.py)."""
    out = tmp_path_factory.mktemp("models")
    train(out)
    return out


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace per test that enforces the restricted Pod Security profile."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    ensure_namespace(cluster, name, RESTRICTED)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def models(cluster: Cluster, namespace: str, trained: Path) -> Iterator[dict[str, dict]]:  # type: ignore[type-arg]
    """ModelVersion manifests of the example models, servable in `namespace` via pvc://."""
    yield provide_models(cluster, namespace, trained)
    remove_models(cluster, namespace)


@pytest.fixture
def client(cluster: Cluster, namespace: str, test_http_image: str) -> InClusterClient:
    return InClusterClient(cluster, namespace, test_http_image)


@pytest.fixture
def rollout(
    cluster: Cluster,
    namespace: str,
    client: InClusterClient,
    models: dict[str, dict],  # type: ignore[type-arg]
    operator: OperatorProcess,
) -> Rollout:
    """v1 served under load, then changed as Git would change it (tests/support/rollout.py)."""
    return Rollout(cluster, namespace, client, models)


@pytest.fixture
def git_repository(cluster: Cluster, tmp_path: Path) -> Iterator[tuple[GitServer, Repository]]:
    """A Git repository served from this host on the node's bridge address, for GitOps
    controllers in the cluster (tests/support/gitops.py)."""
    if cluster.kind != "local":
        pytest.skip("pods fetch Git from this host's bridge address: needs the local cluster")
    with GitServer(tmp_path / "git", host=NODE_IP) as git:
        yield git, Repository(git.root / "models")
