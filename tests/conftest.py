"""Session fixtures: the cluster every integration and e2e test runs against."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster, find_or_start_cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The cluster `KUBECONFIG` names, kind, or the offline local cluster."""
    yield find_or_start_cluster()
