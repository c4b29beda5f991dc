"""Session fixtures: the cluster every integration and e2e test runs against; the Hypothesis
profile every property test runs under."""

from __future__ import annotations

import pytest
from hypothesis import settings

from tests.support.cluster import Cluster, find_or_start_cluster

# Hypothesis fails an example slower than 200 ms by default: a timed assert, which a busy CI
# machine can trip. No deadline.
settings.register_profile("coalmine", deadline=None)
settings.load_profile("coalmine")


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """The cluster `KUBECONFIG` names, kind, or the offline local cluster."""
    return find_or_start_cluster()
