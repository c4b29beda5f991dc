"""The chart on a cluster that serves no ValidatingAdmissionPolicy (issue 19).

Kubernetes before 1.30, or one with the API turned off, cannot hold the governance
policy. The chart must still install there, without the policy and its binding,
and what is lost is what docs/governance.md says: an approval in anyone's name is
admitted. A throw-away API server with the API and its admission plugin turned off
stands in for such a cluster (tests/e2e/apiserver.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.apiserver import second_apiserver
from tests.e2e.test_helm_crds import MODEL_VERSION
from tests.support.cluster import Cluster, ensure_namespace
from tests.support.helm import CHART, helm

RELEASE, SYSTEM, MODELS = "coalmine", "coalmine-system", "models"
NO_POLICIES = (
    "--runtime-config=admissionregistration.k8s.io/v1/validatingadmissionpolicies=false,"
    "admissionregistration.k8s.io/v1/validatingadmissionpolicybindings=false",
    "--disable-admission-plugins=ValidatingAdmissionPolicy",
)


@pytest.fixture(scope="module")
def old_style(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with second_apiserver(tmp_path_factory.mktemp("apiserver"), *NO_POLICIES) as cluster:
        yield cluster


def test_the_chart_installs_without_the_policy_and_approvals_go_unchecked(
    old_style: Cluster, tmp_path: Path
) -> None:
    served = old_style.kubectl("api-resources", "--api-group=admissionregistration.k8s.io")
    assert "validatingadmissionpolicies" not in served.stdout
    ensure_namespace(old_style, SYSTEM)
    helm("install", RELEASE, str(CHART), "-n", SYSTEM, cluster=old_style)
    manifest = helm("get", "manifest", RELEASE, "-n", SYSTEM, cluster=old_style).stdout
    assert "kind: ValidatingAdmissionPolicy" not in manifest
    for role in ("developer", "approver", "operator-on-call"):
        assert old_style.get("clusterrole", f"{RELEASE}-{role}")["rules"]
    old_style.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/modelversions.coalmine.dev"
    )
    ensure_namespace(old_style, MODELS)
    forged = {
        **MODEL_VERSION,
        "metadata": {"name": "iris-v1", "annotations": {"coalmine.dev/approved-by": "anyone"}},
    }
    old_style.apply(forged, namespace=MODELS)
    got = old_style.get("modelversion", "iris-v1", MODELS)["metadata"]["annotations"]
    assert got["coalmine.dev/approved-by"] == "anyone"  # unverified: what is lost
