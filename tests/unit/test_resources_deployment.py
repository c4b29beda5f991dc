"""The serving Deployment: container contract, probes, security, labels."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coalmine.api import ModelDeployment, ModelVersion
from coalmine.resources import DEFAULT_IMAGE, build_deployment
from coalmine.resources.deployment import drift_reference, pin_for, renders, server_signature
from coalmine.resources.naming import VARIANTS, Variant
from tests.integration.test_admission import model_deployment, model_version


def md(name: str = "iris", **spec: Any) -> ModelDeployment:
    doc = model_deployment(name)
    doc["metadata"] |= {"namespace": "ml", "uid": "uid-1"}
    doc["spec"].update(spec)
    doc["spec"] = {k: v for k, v in doc["spec"].items() if v is not None}
    return ModelDeployment.model_validate(doc)


def mv(**spec: Any) -> ModelVersion:
    doc = model_version()
    doc["spec"].update(spec)
    return ModelVersion.model_validate(doc)


def container(dep: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = dep["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env(dep: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(dep)["env"]}


@pytest.mark.parametrize("variant", VARIANTS)
def test_identity_labels_and_owner(variant: Variant) -> None:
    dep = build_deployment(md(), mv(), variant, 2)
    meta = dep["metadata"]
    assert (dep["apiVersion"], dep["kind"]) == ("apps/v1", "Deployment")
    assert meta["name"] == f"iris-{variant}"
    assert meta["namespace"] == "ml"
    assert meta["ownerReferences"][0]["uid"] == "uid-1"
    assert meta["ownerReferences"][0]["controller"] is True
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert pod_labels == meta["labels"]
    assert pod_labels["coalmine.dev/variant"] == variant
    assert pod_labels["coalmine.dev/version"] == "v1"
    assert pod_labels["app.kubernetes.io/managed-by"] == "coalmine"
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector == {"coalmine.dev/deployment": "iris", "coalmine.dev/variant": variant}
    assert selector.items() <= pod_labels.items()


def test_selector_does_not_depend_on_the_version() -> None:
    """A Deployment's selector is immutable, while the version it serves changes."""
    v1 = build_deployment(md(), mv(), "stable", 1)
    v2 = build_deployment(md(), mv(version="v2"), "stable", 1)
    assert v1["spec"]["selector"] == v2["spec"]["selector"]
    assert v1["metadata"]["name"] == v2["metadata"]["name"]
    assert env(v2)["COALMINE_MODEL_VERSION"] == "v2"


def test_replicas_none_leaves_the_count_to_the_hpa() -> None:
    assert build_deployment(md(), mv(), "stable", 3)["spec"]["replicas"] == 3
    assert build_deployment(md(), mv(), "canary", 0)["spec"]["replicas"] == 0
    assert "replicas" not in build_deployment(md(), mv(), "stable", None)["spec"]


def test_server_contract_env() -> None:
    values = env(build_deployment(md(serving={"workers": 4, "maxBatchSize": 8}), mv(), "canary", 1))
    assert values["COALMINE_NAME"] == "iris"
    assert values["COALMINE_URI"] == "file:///models/iris-v1.joblib"
    assert values["COALMINE_SHA256"] == "0123456789abcdef" * 4
    assert values["COALMINE_FORMAT"] == "joblib"
    assert values["COALMINE_MODEL_VERSION"] == "v1"
    assert values["COALMINE_VARIANT"] == "canary"
    assert values["COALMINE_WORKERS"] == "4"
    assert values["COALMINE_MAX_BATCH_SIZE"] == "8"
    assert values["COALMINE_PORT"] == "8080"
    assert json.loads(values["COALMINE_REFERENCE"]) == {
        "features": [{"name": "sepal_length", "edges": [4, 5, 6, 8], "expected": [0.3, 0.4, 0.3]}]
    }


def test_the_queueing_budget_reaches_the_server_only_when_set() -> None:
    """Unset, the pod template is what it was before the knob existed: no new revision."""
    assert "COALMINE_MAX_QUEUE_MS" not in env(build_deployment(md(), mv(), "stable", 1))
    budget = build_deployment(md(serving={"maxQueueMs": 0}), mv(), "stable", 1)
    assert env(budget)["COALMINE_MAX_QUEUE_MS"] == "0"


def test_reference_is_optional() -> None:
    assert "COALMINE_REFERENCE" not in env(build_deployment(md(), mv(reference=None), "stable", 1))


def test_reference_follows_the_input_order() -> None:
    """The server matches histograms to columns by position."""
    histogram = {"binEdges": [0, 1], "fractions": [1]}
    version = mv(
        signature={
            "inputs": [{"name": n, "datatype": "FP64"} for n in ("a", "b", "c")],
            "output": {"kind": "regression"},
        },
        reference={"features": [{"name": n, **histogram} for n in ("c", "a", "b")]},
    )
    reference = drift_reference(version)
    assert reference is not None
    assert [f["name"] for f in reference["features"]] == ["a", "b", "c"]


def signature(*inputs: dict[str, Any]) -> dict[str, Any]:
    return {"inputs": list(inputs), "output": {"kind": "classification"}}


def test_the_signature_reaches_the_server_in_input_order() -> None:
    """The server matches inputs by these names, so they go in the model's order."""
    version = mv(
        signature=signature(
            {"name": "b", "datatype": "FP32"},
            {"name": "a", "datatype": "BYTES", "shape": [-1, 1]},
            {"name": "c", "datatype": "INT64", "shape": [1]},
        )
    )
    expected = {
        "inputs": [
            {"name": "b", "datatype": "FP32"},
            {"name": "a", "datatype": "BYTES"},
            {"name": "c", "datatype": "INT64"},
        ]
    }
    assert json.loads(env(build_deployment(md(), version, "stable", 1))["COALMINE_SIGNATURE"]) == (
        expected
    )
    assert server_signature(version) is not None
    assert json.loads(server_signature(version) or "") == expected


@pytest.mark.parametrize("shape", [[4], [-1, 4], [-1, -1], [2, 1]])
def test_a_signature_with_a_vector_input_is_not_passed(shape: list[int]) -> None:
    """One name for several features cannot be matched by name: inputs stay positional."""
    version = mv(signature=signature({"name": "x", "datatype": "FP64", "shape": shape}))
    assert server_signature(version) is None
    assert "COALMINE_SIGNATURE" not in env(build_deployment(md(), version, "stable", 1))


def test_without_a_signature_none_is_passed() -> None:
    assert "COALMINE_SIGNATURE" not in env(build_deployment(md(), mv(signature=None), "stable", 1))


def test_the_signature_changes_the_template() -> None:
    """Passing it changes what the pods run, so a new signature is a new revision."""
    one = pin_for(md(), mv(signature=signature({"name": "a", "datatype": "FP64"})))
    other = pin_for(md(), mv(signature=signature({"name": "b", "datatype": "FP64"})))
    assert one.template_hash != other.template_hash


def test_probes_use_the_health_endpoints() -> None:
    c = container(build_deployment(md(), mv(), "stable", 1))
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60  # room to load a model
    ready = c["readinessProbe"]
    assert ready["periodSeconds"] * ready["failureThreshold"] <= 5  # leave endpoints fast
    # ... when it answers unready; a late answer from an overloaded pod is not a failure
    assert ready["timeoutSeconds"] >= 10
    assert c["livenessProbe"]["timeoutSeconds"] >= 10
    assert c["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "grpc", "containerPort": 8081, "protocol": "TCP"},
    ]
    assert env(build_deployment(md(), mv(), "stable", 1))["COALMINE_GRPC_PORT"] == "8081"


def test_restricted_pod_security() -> None:
    dep = build_deployment(md(), mv(), "stable", 1)
    pod = dep["spec"]["template"]["spec"]
    sc = container(dep)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] >= 10
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container(dep)["volumeMounts"]


def test_rolling_update_never_drops_capacity() -> None:
    strategy = build_deployment(md(), mv(), "stable", 1)["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize(
    ("deployment_image", "version_image", "expected"),
    [(None, None, DEFAULT_IMAGE), (None, "v:1", "v:1"), ("d:1", "v:1", "d:1")],
)
def test_image_precedence(
    deployment_image: str | None, version_image: str | None, expected: str
) -> None:
    serving = {"image": deployment_image} if deployment_image else None
    c = container(build_deployment(md(serving=serving), mv(image=version_image), "stable", 1))
    assert c["image"] == expected
    assert c["imagePullPolicy"] == "IfNotPresent"


def test_resources_default_and_override() -> None:
    default = container(build_deployment(md(), mv(), "stable", 1))["resources"]
    assert default == {"requests": {"cpu": "100m", "memory": "256Mi"}}
    given_resources = {"requests": {"cpu": 2}, "limits": {"memory": "1Gi"}}
    custom = container(build_deployment(md(resources=given_resources), mv(), "stable", 1))
    assert custom["resources"] == given_resources


def test_a_limit_alone_is_not_undercut_by_a_default_request() -> None:
    """The Pod API requests the limit when only a limit is given; a default 256Mi request
    above a 64Mi limit would be refused."""
    small = {"limits": {"memory": "64Mi"}}
    got = container(build_deployment(md(resources=small), mv(), "stable", 1))["resources"]
    assert got == {"requests": {"cpu": "100m"}, "limits": {"memory": "64Mi"}}
    both = {"limits": {"memory": "64Mi", "cpu": "1"}}
    got = container(build_deployment(md(resources=both), mv(), "stable", 1))["resources"]
    assert got == {"limits": {"memory": "64Mi", "cpu": "1"}}


def test_pvc_artifacts_are_mounted_read_only() -> None:
    dep = build_deployment(md(), mv(uri="pvc://models/iris/v1.joblib"), "stable", 1)
    pod = dep["spec"]["template"]["spec"]
    assert {
        "name": "model",
        "persistentVolumeClaim": {"claimName": "models", "readOnly": True},
    } in pod["volumes"]
    mount = {"name": "model", "mountPath": "/mnt/models", "readOnly": True}
    assert mount in container(dep)["volumeMounts"]
    assert env(dep)["COALMINE_URI"] == "pvc://models/iris/v1.joblib"
    assert env(dep)["COALMINE_MOUNT_ROOT"] == "/mnt/models"


@pytest.mark.parametrize("uri", ["file:///a", "https://h/a", "s3://b/a"])
def test_other_uris_mount_nothing(uri: str) -> None:
    dep = build_deployment(md(), mv(uri=uri), "stable", 1)
    assert [v["name"] for v in dep["spec"]["template"]["spec"]["volumes"]] == ["tmp", "mirror"]
    assert env(dep)["COALMINE_URI"] == uri


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_pod_reads_the_mirror_file_from_an_optional_config_map(variant: Variant) -> None:
    dep = build_deployment(md(), mv(), variant, 1)
    volume = {"name": "mirror", "configMap": {"name": "iris-mirror", "optional": True}}
    assert volume in dep["spec"]["template"]["spec"]["volumes"]
    mount = {"name": "mirror", "mountPath": "/etc/coalmine/mirror", "readOnly": True}
    assert mount in container(dep)["volumeMounts"]
    assert env(dep)["COALMINE_MIRROR_CONFIG"] == "/etc/coalmine/mirror/mirror.json"


@given(st.from_regex(r"[a-z][-a-z0-9]{0,61}[a-z0-9]", fullmatch=True), st.sampled_from(VARIANTS))
def test_names_stay_valid_for_any_deployment_name(name: str, variant: Variant) -> None:
    dep = build_deployment(md(name), mv(), variant, 1)
    assert len(dep["metadata"]["name"]) <= 63
    assert dep["metadata"]["labels"]["coalmine.dev/deployment"] == name


def test_builder_is_pure() -> None:
    a = build_deployment(md(), mv(), "canary", 1)
    assert a == build_deployment(md(), mv(), "canary", 1)
    a["metadata"]["labels"]["x"] = "y"
    assert "x" not in build_deployment(md(), mv(), "canary", 1)["metadata"]["labels"]


def test_a_pin_is_built_as_pinned_not_as_the_spec_reads_now() -> None:
    old = md(resources={"limits": {"memory": "1Gi"}})
    pin = pin_for(old, mv())
    new_spec = md(resources={"limits": {"memory": "64Mi"}}, serving={"workers": 4})
    dep = build_deployment(new_spec, mv(), "stable", 2, pin)
    assert container(dep)["resources"]["limits"] == {"memory": "1Gi"}
    assert env(dep)["COALMINE_WORKERS"] == "1"
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["coalmine.dev/template-hash"] == pin.template_hash
    assert dep["metadata"]["annotations"]["coalmine.dev/template-hash"] == pin.template_hash
    assert renders(new_spec, mv(), pin)
    assert pin_for(new_spec, mv()).template_hash != pin.template_hash


def test_a_pin_does_not_render_from_another_model_version_or_template() -> None:
    served = mv()
    served.metadata.uid = "uid-a"
    pin = pin_for(md(), served)
    again = mv(sha256="1" * 64)
    again.metadata.uid = "uid-b"
    assert not renders(md(), again, pin)
    assert not renders(md(), None, pin)
    assert not renders(md(), served, pin.model_copy(update={"template_hash": "0" * 16}))


@pytest.mark.parametrize("variant", VARIANTS)
def test_stable_and_canary_of_one_revision_share_the_template_hash(variant: Variant) -> None:
    pin = pin_for(md(), mv())
    dep = build_deployment(md(), mv(), variant, 1)
    assert dep["metadata"]["annotations"]["coalmine.dev/template-hash"] == pin.template_hash
