"""Pydantic models of Coalmine's custom resources: the single source of the CRDs."""

from coalmine.api.base import API_VERSION, GROUP, VERSION, Condition, ObjectMeta, parse_duration
from coalmine.api.deployment import ModelDeployment, ModelDeploymentSpec, ModelDeploymentStatus
from coalmine.api.governance import APPROVED_BY_ANNOTATION
from coalmine.api.modelversion import ModelVersion, ModelVersionSpec, ModelVersionStatus
from coalmine.api.strategy import RolloutStrategy, RolloutStrategySpec

__all__ = [
    "API_VERSION",
    "APPROVED_BY_ANNOTATION",
    "GROUP",
    "VERSION",
    "Condition",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelVersion",
    "ModelVersionSpec",
    "ModelVersionStatus",
    "ObjectMeta",
    "RolloutStrategy",
    "RolloutStrategySpec",
    "parse_duration",
]
