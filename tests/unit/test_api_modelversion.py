"""ModelVersion: parsing, wire names and the approval marker."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from coalmine.api import APPROVED_BY_ANNOTATION, ModelVersion, ModelVersionSpec, ModelVersionStatus
from coalmine.api.governance import APPROVED_GROUPS_ANNOTATION
from tests.integration.test_admission import DIGEST, model_version


def spec(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = model_version()["spec"]
    raw.update(changes)
    return raw


def test_minimal_spec_needs_only_identity_and_artifact() -> None:
    minimal = {
        "model": "iris",
        "version": "v1",
        "uri": "s3://bucket/iris.onnx",
        "sha256": DIGEST,
        "format": "onnx",
    }
    parsed = ModelVersionSpec.model_validate(minimal)
    assert parsed.signature is None
    assert parsed.to_json() == minimal


def test_snake_case_in_python_camel_case_on_the_wire() -> None:
    parsed = ModelVersionSpec.model_validate(spec())
    feature = parsed.reference.features[0] if parsed.reference else None
    assert feature is not None
    assert feature.bin_edges == [4, 5, 6, 8]
    assert "binEdges" in parsed.to_json()["reference"]["features"][0]
    by_name = ModelVersionSpec(**{**spec(), "reference": {"features": []}})
    assert by_name.reference is not None


@pytest.mark.parametrize(
    "uri",
    ["file:///m.joblib", "http://h/m", "https://h/m?x=1", "s3://b/k", "pvc://claim/dir/m.onnx"],
)
def test_supported_uri_schemes(uri: str) -> None:
    assert ModelVersionSpec.model_validate(spec(uri=uri)).uri == uri


@pytest.mark.parametrize(
    "uri", ["ftp://h/m", "/models/m.joblib", "s3://", "file:// spaced", "gs://b/k"]
)
def test_unsupported_uris(uri: str) -> None:
    with pytest.raises(ValidationError, match="uri"):
        ModelVersionSpec.model_validate(spec(uri=uri))


@pytest.mark.parametrize("version", ["-v1", "v1-", "v 1", "a" * 64, ""])
def test_version_must_be_a_label_value(version: str) -> None:
    with pytest.raises(ValidationError, match="version"):
        ModelVersionSpec.model_validate(spec(version=version))


def test_bin_edges_must_increase() -> None:
    feature = {"name": "x", "binEdges": [0, 2, 1], "fractions": [0.5, 0.5]}
    with pytest.raises(ValidationError, match="strictly increasing"):
        ModelVersionSpec.model_validate(spec(reference={"features": [feature]}))


def test_fractions_are_shares() -> None:
    feature = {"name": "x", "binEdges": [0, 1], "fractions": [1.5]}
    with pytest.raises(ValidationError, match="fractions"):
        ModelVersionSpec.model_validate(spec(reference={"features": [feature]}))


def test_fractions_sum_to_one() -> None:
    feature = {"name": "x", "binEdges": [0, 1, 2], "fractions": [0.5, 0.4]}
    with pytest.raises(ValidationError, match="sum to 1"):
        ModelVersionSpec.model_validate(spec(reference={"features": [feature]}))


def test_signature_needs_an_input() -> None:
    with pytest.raises(ValidationError, match="inputs"):
        ModelVersionSpec.model_validate(
            spec(signature={"inputs": [], "output": {"kind": "regression"}})
        )


def test_shape_allows_variable_dimensions_only_as_minus_one() -> None:
    inputs = [{"name": "t", "datatype": "FP32", "shape": [-1, 4]}]
    ok = spec(signature={"inputs": inputs, "output": {"kind": "regression"}})
    assert ModelVersionSpec.model_validate(ok).signature is not None
    inputs[0]["shape"] = [-2, 4]
    with pytest.raises(ValidationError, match="shape"):
        ModelVersionSpec.model_validate(ok)


def test_approval_comes_from_the_annotation() -> None:
    doc = model_version()
    assert ModelVersion.model_validate(doc).approval is None
    doc["metadata"]["annotations"] = {APPROVED_BY_ANNOTATION: "ana@example.com"}
    approval = ModelVersion.model_validate(doc).approval
    assert approval is not None
    assert (approval.by, approval.groups) == ("ana@example.com", [])
    doc["metadata"]["annotations"][APPROVED_GROUPS_ANNOTATION] = "ml-leads, ,risk"
    approval = ModelVersion.model_validate(doc).approval
    assert approval is not None
    assert approval.groups == ["ml-leads", "risk"]
    assert APPROVED_BY_ANNOTATION == "coalmine.dev/approved-by"


def test_a_blank_approval_is_none() -> None:
    doc = model_version()
    doc["metadata"]["annotations"] = {APPROVED_BY_ANNOTATION: "  ", APPROVED_GROUPS_ANNOTATION: "x"}
    assert ModelVersion.model_validate(doc).approval is None


def test_status_defaults_to_pending_and_checks_the_digest() -> None:
    assert ModelVersionStatus().phase == "Pending"
    status = ModelVersionStatus.model_validate({"phase": "Validated", "verifiedSha256": DIGEST})
    assert status.to_json() == {"phase": "Validated", "verifiedSha256": DIGEST, "conditions": []}
    with pytest.raises(ValidationError):
        ModelVersionStatus.model_validate({"phase": "Broken"})


def test_resource_ignores_api_version_and_kind() -> None:
    parsed = ModelVersion.model_validate(model_version("x") | {"status": {"phase": "Invalid"}})
    assert parsed.metadata.name == "x"
    assert parsed.status is not None
    assert parsed.status.phase == "Invalid"
