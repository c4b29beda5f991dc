"""Users of the local cluster, made from client certificates of its CA (user.sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.cluster import REPO, Cluster

USER_SCRIPT = REPO / "hack" / "localcluster" / "user.sh"


def mint_user(cluster: Cluster, name: str, *groups: str) -> Cluster:
    """The same cluster as `name`, a member of `groups`, with no permissions of its own."""
    if cluster.kind != "local":
        raise RuntimeError("minting users needs the local cluster's CA (hack/localcluster)")
    out = subprocess.run(
        ["bash", str(USER_SCRIPT), name, *groups],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return Cluster(Path(out.strip().splitlines()[-1]), "local", cluster.kubectl_bin)
