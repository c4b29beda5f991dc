"""Fixtures of the end-to-end tests: images in the cluster, throwaway namespaces."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster, ensure_namespace
from tests.support.images import build_and_load

TEST_HTTP_IMAGE = "coalmine/test-http:0.1.0"


@pytest.fixture(scope="session")
def test_http_image(cluster: Cluster) -> str:
    """The tiny HTTP server used to prove the cluster itself works."""
    build_and_load(cluster, "image-test-http", "coalmine-test-http.tar")
    return TEST_HTTP_IMAGE


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    ensure_namespace(cluster, name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
