"""Session fixtures: the cluster every integration and e2e test runs against."""

from __future__ import annotations

import pytest

from tests.support.cluster import Cluster, find_or_start_cluster


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """The cluster `KUBECONFIG` names, kind, or the offline local cluster."""
    return find_or_start_cluster()
