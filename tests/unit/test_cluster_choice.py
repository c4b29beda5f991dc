"""Which cluster the tests run against (tests/support/cluster.py), without starting one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cluster import CLUSTER_ENV, KIND_NAME, choose_cluster, kind_cluster


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "local"),
        ({"KUBECONFIG": "/some/kubeconfig"}, "kubeconfig"),
        ({CLUSTER_ENV: "kind"}, "kind"),
        ({CLUSTER_ENV: "kind", "KUBECONFIG": "/some/kubeconfig"}, "kind"),
        ({CLUSTER_ENV: "local", "KUBECONFIG": "/some/kubeconfig"}, "local"),
        ({CLUSTER_ENV: ""}, "local"),
    ],
)
def test_the_variable_chooses_and_kubeconfig_is_the_default(
    env: dict[str, str], expected: str
) -> None:
    assert choose_cluster(env) == expected


def test_an_unknown_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="kind or local"):
        choose_cluster({CLUSTER_ENV: "minikube"})


def test_pytest_kind_gets_our_binaries_and_downloads_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # KindCluster keeps a state folder in the working directory
    kind, kubectl = tmp_path / "kind", tmp_path / "kubectl"
    for binary in (kind, kubectl):
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    kc = kind_cluster(kind, kubectl, tmp_path / "state")
    assert (kc.name, kc.kind_path, kc.kubectl_path) == (KIND_NAME, kind, kubectl)
    assert kc.kubeconfig_path == tmp_path / "state" / "kubeconfig"

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("pytest-kind tried to download")

    monkeypatch.setattr("requests.get", no_download)
    kc.ensure_kind()
    kc.ensure_kubectl()
