"""The chart's own CRD path (issue 12): `helm install` with `crds.install=true` into
a cluster without Coalmine's CRDs, `helm upgrade` to a chart whose CRD gained a
field, the custom resources surviving both, and `helm uninstall` keeping the CRDs
and the custom resources by default (charts/coalmine/README.md).

The shared test cluster already has the CRDs (other tests run against them), so
this runs against a second, throw-away API server: etcd + kube-apiserver from the
local cluster's cached binaries on loopback ports (tests/e2e/apiserver.py). It has
no node, so the operator Deployment is stored but never runs; the operator itself
is exercised in test_helm_install.py and test_install_yaml.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.apiserver import second_apiserver
from tests.e2e.test_operator_serving import model_deployment
from tests.support.cluster import Cluster, ensure_namespace
from tests.support.crds import crd_names
from tests.support.helm import CHART, helm

RELEASE, SYSTEM, MODELS = "coalmine", "coalmine-system", "models"
MD_CRD = "modeldeployments.coalmine.dev"
NEW_FIELD = "owner"  # what the "next chart version" adds to ModelDeployment.spec
MODEL_VERSION = {
    "apiVersion": "coalmine.dev/v1alpha1",
    "kind": "ModelVersion",
    "metadata": {"name": "iris-v1"},
    "spec": {
        "model": "iris",
        "version": "v1",
        "uri": "pvc://coalmine-models/iris-v1.skops",
        "sha256": "0123456789abcdef" * 4,
        "format": "skops",
    },
}


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with second_apiserver(tmp_path_factory.mktemp("apiserver")) as cluster:
        yield cluster


def next_chart(tmp: Path) -> Path:
    """A copy of the chart, one version on, whose ModelDeployment CRD has one more field."""
    chart = tmp / "coalmine"
    shutil.copytree(CHART, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    major, minor, patch = meta["version"].split(".")
    meta["version"] = f"{major}.{minor}.{int(patch) + 1}"
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    path = chart / "files" / "crds" / "coalmine.dev_modeldeployments.yaml"
    crd = yaml.safe_load(path.read_text())
    for version in crd["spec"]["versions"]:
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        spec["properties"][NEW_FIELD] = {"type": "string", "description": "Who owns it."}
    path.write_text(yaml.safe_dump(crd, sort_keys=False))
    return chart


def spec_fields(cluster: Cluster) -> set[str]:
    crd = cluster.get("crd", MD_CRD)
    (version,) = crd["spec"]["versions"]
    return set(version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"])


def uids(cluster: Cluster) -> dict[str, str]:
    return {
        ref: cluster.get(*ref.split("/"), namespace=MODELS)["metadata"]["uid"]
        for ref in ("modelversion/iris-v1", "modeldeployment/iris")
    }


def with_owner(owner: str) -> dict[str, Any]:
    md = model_deployment("iris", "iris-v1")
    md["spec"][NEW_FIELD] = owner
    return md


def test_install_with_crds_upgrade_adds_a_field_uninstall_keeps_them(
    bare: Cluster, tmp_path: Path
) -> None:
    names = crd_names()
    listed = bare.kubectl("get", "crds", "-o", "name").stdout.split()
    assert not [n for n in listed if n.endswith(".coalmine.dev")], listed

    # Install: the release brings the CRDs (crds.install defaults to true).
    ensure_namespace(bare, SYSTEM)
    helm("install", RELEASE, str(CHART), "-n", SYSTEM, "--set", "crds.install=true", cluster=bare)
    bare.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                 *[f"crd/{n}" for n in names])  # fmt: skip
    # A cluster that serves ValidatingAdmissionPolicies gets the governance policy.
    policy = bare.get("validatingadmissionpolicy", f"{RELEASE}-governance")
    assert policy["spec"]["failurePolicy"] == "Fail"
    for name in names:
        crd = bare.get("crd", name)
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    ensure_namespace(bare, MODELS)
    bare.apply(MODEL_VERSION, model_deployment("iris", "iris-v1"), namespace=MODELS)
    before = uids(bare)
    assert NEW_FIELD not in spec_fields(bare)
    refused = bare.kubectl(
        "apply", "--server-side", "-n", MODELS, "-f", "-",
        input=yaml.safe_dump(with_owner("ml-team")), check=False,
    )  # fmt: skip
    assert refused.returncode != 0, refused.stdout
    assert NEW_FIELD in refused.stderr, refused.stderr

    # Upgrade to a chart whose CRD has the new field: the CRD follows, the CRs stay.
    helm("upgrade", RELEASE, str(next_chart(tmp_path)), "-n", SYSTEM, cluster=bare)
    assert NEW_FIELD in spec_fields(bare)
    assert uids(bare) == before
    bare.apply(with_owner("ml-team"), namespace=MODELS)
    assert bare.get("modeldeployment", "iris", MODELS)["spec"][NEW_FIELD] == "ml-team"

    # Uninstall: the operator's objects go, the CRDs and every custom resource stay.
    helm("uninstall", RELEASE, "-n", SYSTEM, cluster=bare)
    gone = bare.kubectl("get", "clusterrole", RELEASE, check=False)
    assert "NotFound" in gone.stderr, gone.stdout
    gone = bare.kubectl("-n", SYSTEM, "get", "deployment", RELEASE, check=False)
    assert "NotFound" in gone.stderr, gone.stdout
    for name in names:
        assert bare.get("crd", name)["metadata"].get("deletionTimestamp") is None
    assert uids(bare) == before
    assert bare.get("modeldeployment", "iris", MODELS)["spec"][NEW_FIELD] == "ml-team"
