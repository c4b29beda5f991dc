"""The kind path: with COALMINE_TEST_CLUSTER=kind the session's cluster is a kind
cluster made by pytest-kind's KindCluster from a kind binary built from Go modules
(hack/kind/build.sh). It needs a Docker engine and kind's node image (kindest/node,
pulled by `kind create cluster` or preloaded); without them it skips and says so.
"""

from __future__ import annotations

import os

import pytest

from tests.support.cluster import CLUSTER_ENV, KIND_NAME, Cluster, kind_binary, kind_missing


def test_the_kind_path_is_pytest_kinds_cluster_from_our_kind_binary(
    request: pytest.FixtureRequest,
) -> None:
    if os.environ.get(CLUSTER_ENV) != "kind":
        pytest.skip(
            f"the kind path runs with {CLUSTER_ENV}=kind and needs a Docker engine and "
            f"kind's node image (kindest/node); here: {kind_missing() or 'Docker answers'}"
        )
    cluster: Cluster = request.getfixturevalue("cluster")  # only now: kind was chosen
    assert cluster.kind == "kind"
    assert cluster.kind_cluster is not None
    assert cluster.kind_cluster.kind_path == kind_binary()
    nodes = cluster.kubectl("get", "nodes", "-o", "name").stdout.split()
    assert nodes == [f"node/{KIND_NAME}-control-plane"]
