"""Shared building blocks of the Coalmine API: base model, scalar types, conditions.

Every model here is both the operator's parsed view of a resource and the source
of the CRD schema, so constraints are declared once (as pydantic constraints or
CEL rules) and reach both the API server and Python callers.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP = "coalmine.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

# Label values and DNS-1123 names; both bound what the builders derive from them.
LABEL_VALUE_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN, max_length=32)]
"""Go-style duration string; CEL's `duration()` parses the same syntax."""

Quantity = Annotated[
    int | Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)],
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes resource quantity (`500m`, `1Gi`, `2`), as written in a Pod spec."""

KubeName = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
]
LabelValue = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=LABEL_VALUE_PATTERN)
]


def parse_duration(text: str) -> timedelta:
    """Convert a validated duration string to a timedelta."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"invalid duration {text!r}; use e.g. 30s, 5m, 1h30m")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def cel(rule: str, message: str, **extra: str) -> dict[str, str]:
    """One `x-kubernetes-validations` entry (extra: fieldPath, reason, optionalOldSelf)."""
    return {"rule": rule, "message": message, **extra}


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """The schema fragment that attaches CEL rules to a model or field."""
    return {"x-kubernetes-validations": list(rules)}


def map_list(*keys: str) -> dict[str, Any]:
    """Mark a list as a map keyed by `keys`: unique keys, merged per item by server-side apply."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


class ApiModel(BaseModel):
    """Base of all API models: camelCase on the wire, snake_case in Python, strict fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    def to_json(self) -> dict[str, Any]:
        """The resource fragment as the API server stores it (aliases, no unset optionals)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ObjectMeta(BaseModel):
    """The slice of Kubernetes object metadata the operator reads; other keys are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(ApiModel):
    """A kstatus-compatible condition, as in metav1.Condition."""

    type: Annotated[str, StringConstraints(min_length=1, max_length=316)]
    """Condition type, e.g. Ready, Reconciling, Stalled."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: Annotated[str, StringConstraints(max_length=1024)] = ""
    """A CamelCase word for machines and dashboards."""
    message: Annotated[str, StringConstraints(max_length=32768)] = ""
    """A sentence for humans."""
    last_transition_time: AwareDatetime | None = None
    """When status last changed."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this condition was computed from."""


Conditions = Annotated[
    list[Condition], Field(default_factory=list, max_length=32, json_schema_extra=map_list("type"))
]
