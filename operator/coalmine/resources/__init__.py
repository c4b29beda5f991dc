"""Pure builders of the Kubernetes objects a ModelDeployment owns (no I/O)."""

from coalmine.resources.deployment import DEFAULT_IMAGE, build_deployment
from coalmine.resources.hpa import build_hpa
from coalmine.resources.naming import VARIANTS, Manifest, Variant
from coalmine.resources.service import build_service, service_url

__all__ = [
    "DEFAULT_IMAGE",
    "VARIANTS",
    "Manifest",
    "Variant",
    "build_deployment",
    "build_hpa",
    "build_service",
    "service_url",
]
