"""ModelVersion: an immutable registry entry for one trained model artifact."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from coalmine.api.base import (
    DNS_SUBDOMAIN_PATTERN,
    ApiModel,
    Conditions,
    Image,
    LabelValue,
    ObjectMeta,
    cel,
    map_list,
    validations,
)
from coalmine.api.governance import Approval, approval_of

URI_PATTERN = r"^(file|https?|s3|pvc)://[^\s]+$"
# pvc://CLAIM/PATH: CLAIM names a PersistentVolumeClaim, PATH a file inside it.
PVC_URI_PATTERN = r"^pvc://" + DNS_SUBDOMAIN_PATTERN[1:-1] + r"/(.*/)?[^/]+$"
CLIMBING_PATH = r"/[.][.](/|$)"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
FRACTION_TOLERANCE = 0.001

ModelFormat = Literal["joblib", "pickle", "skops", "onnx"]
DataType = Literal["FP32", "FP64", "INT32", "INT64", "BOOL", "BYTES"]
"""Tensor datatypes of the Open Inference Protocol that tabular models take."""

FeatureName = Annotated[str, StringConstraints(min_length=1, max_length=253)]


class InputSpec(ApiModel):
    """One model input (feature or tensor)."""

    name: FeatureName
    """Feature name, as clients send it."""
    datatype: DataType
    """Open Inference Protocol datatype."""
    shape: list[Annotated[int, Field(ge=-1, le=2**31 - 1)]] | None = Field(
        default=None, max_length=8
    )
    """Tensor shape; -1 marks a variable dimension. Absent means a scalar feature."""


class OutputSpec(ApiModel):
    """What the model predicts."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.kind == 'classification' || !has(self.classLabels)",
                "classLabels are only allowed when kind is classification",
            )
        )
    )

    kind: Literal["classification", "regression"]
    """Class labels or numbers; decides how prediction shift is measured."""
    class_labels: list[Annotated[str, StringConstraints(max_length=253)]] | None = Field(
        default=None, max_length=1000
    )
    """Human-readable class names, indexed by predicted class."""

    @model_validator(mode="after")
    def _labels_need_classification(self) -> OutputSpec:
        if self.class_labels is not None and self.kind != "classification":
            raise ValueError("classLabels are only allowed when kind is classification")
        return self


class Signature(ApiModel):
    """Inputs and output of the model."""

    inputs: list[InputSpec] = Field(
        min_length=1, max_length=512, json_schema_extra=map_list("name")
    )
    """Inputs in the order the model takes them, keyed by name."""
    output: OutputSpec

    @model_validator(mode="after")
    def _unique_inputs(self) -> Signature:
        names = [i.name for i in self.inputs]
        if len(names) != len(set(names)):
            raise ValueError("signature input names must be unique")
        return self


class FeatureReference(ApiModel):
    """Training distribution of one feature as a histogram, the baseline for drift.

    `binEdges` are the k+1 boundaries of k bins; `fractions` are the share of
    training rows per bin. Values outside the edges count as out of distribution.
    """

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "size(self.fractions) == size(self.binEdges) - 1",
                "fractions must have exactly one entry per bin (size(binEdges) - 1)",
            ),
            cel(
                "self.fractions.sum() >= 0.999 && self.fractions.sum() <= 1.001",
                "fractions must sum to 1",
            ),
        )
    )

    name: FeatureName
    """The input's name in the signature."""
    bin_edges: list[float] = Field(
        min_length=2,
        max_length=65,
        json_schema_extra=validations(
            # Sorted and no edge twice: strictly increasing.
            cel("self.isSorted()", "binEdges must be strictly increasing"),
            cel(
                "self.all(e, self.indexOf(e) == self.lastIndexOf(e))",
                "binEdges must be strictly increasing (an edge is repeated)",
            ),
        ),
    )
    """Bin boundaries in strictly increasing order."""
    fractions: list[Annotated[float, Field(ge=0, le=1)]] = Field(min_length=1, max_length=64)
    """Share of training rows in each bin."""

    @model_validator(mode="after")
    def _consistent_histogram(self) -> FeatureReference:
        if len(self.fractions) != len(self.bin_edges) - 1:
            raise ValueError("fractions must have exactly one entry per bin (size(binEdges) - 1)")
        if any(b <= a for a, b in zip(self.bin_edges, self.bin_edges[1:], strict=False)):
            raise ValueError("binEdges must be strictly increasing")
        if abs(sum(self.fractions) - 1) > FRACTION_TOLERANCE:
            raise ValueError("fractions must sum to 1")
        return self


class Reference(ApiModel):
    """Reference statistics from training data, used by drift and out-of-distribution metrics."""

    features: list[FeatureReference] = Field(max_length=512, json_schema_extra=map_list("name"))
    """One histogram per input feature, keyed by name."""
    predictions: (
        dict[
            Annotated[str, StringConstraints(max_length=253)],
            Annotated[float, Field(ge=0, le=1)],
        ]
        | None
    ) = Field(default=None, max_length=1000)
    """Classifiers: the share of rows per predicted class on training or validation data,
    keyed as the serving pods label classes (e.g. "0" or "setosa"). Monitoring's
    predictionShift compares each variant's live predictions with it."""

    @model_validator(mode="after")
    def _unique_features(self) -> Reference:
        names = [f.name for f in self.features]
        if len(names) != len(set(names)):
            raise ValueError("reference feature names must be unique")
        return self


class ModelVersionSpec(ApiModel):
    """An artifact and everything needed to serve and judge it. Immutable once created."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self == oldSelf",
                "ModelVersion spec is immutable; create a new ModelVersion instead",
            ),
            cel(
                "!self.uri.startsWith('pvc://')"
                f" || self.uri.matches('{PVC_URI_PATTERN.replace(chr(92), chr(92) * 2)}')"
                f" && !self.uri.matches('{CLIMBING_PATH}')",
                "a pvc:// uri must be pvc://CLAIM/PATH with a claim name and a file path"
                " that stays inside the claim (no '..' segments)",
                fieldPath=".uri",
            ),
        )
    )

    model: LabelValue
    """Logical model name shared by all versions of the model."""
    version: LabelValue
    """Version label, unique per model (e.g. v2, 2024-06-01); shown as coalmine.dev/version."""
    uri: Annotated[str, StringConstraints(max_length=2048, pattern=URI_PATTERN)]
    """Artifact location: file://, http://, https://, s3:// or pvc://CLAIM/PATH."""
    sha256: Annotated[str, StringConstraints(max_length=64, pattern=SHA256_PATTERN)]
    """SHA-256 of the artifact (64 lowercase hex digits); checked before loading."""
    format: ModelFormat
    """Serialization format of the artifact."""
    signature: Signature | None = None
    metrics: dict[Annotated[str, StringConstraints(max_length=63)], float] | None = Field(
        default=None, max_length=64
    )
    """Training or validation figures, e.g. accuracy: 0.97."""
    reference: Reference | None = None
    image: Image | None = None
    """Custom serving image; the default Coalmine serving image when absent."""

    @model_validator(mode="after")
    def _pvc_inside_claim(self) -> ModelVersionSpec:
        if self.uri.startswith("pvc://") and (
            not re.fullmatch(PVC_URI_PATTERN, self.uri) or re.search(CLIMBING_PATH, self.uri)
        ):
            raise ValueError(
                "a pvc:// uri must be pvc://CLAIM/PATH with a claim name and a file path"
                " that stays inside the claim (no '..' segments)"
            )
        return self


ModelVersionPhase = Literal["Pending", "Validated", "Invalid"]


class ModelVersionStatus(ApiModel):
    """Outcome of the operator's artifact check."""

    observed_generation: int | None = Field(default=None, ge=0)
    phase: ModelVersionPhase = "Pending"
    verified_sha256: Annotated[str, StringConstraints(pattern=SHA256_PATTERN)] | None = None
    """Digest the operator computed from the artifact itself."""
    message: Annotated[str, StringConstraints(max_length=4096)] | None = None
    """Why the version is Invalid, or what the check is waiting for."""
    conditions: Conditions


class ModelVersion(ApiModel):
    """A registered model artifact."""

    model_config = ConfigDict(extra="ignore")

    metadata: ObjectMeta
    spec: ModelVersionSpec
    status: ModelVersionStatus | None = None

    @property
    def approval(self) -> Approval | None:
        """Who approved this version for production traffic, if anyone."""
        return approval_of(self.metadata.annotations)
