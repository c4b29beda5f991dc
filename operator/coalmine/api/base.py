"""Shared building blocks of the Coalmine API: base model, scalar types, conditions.

Every model here is both the operator's parsed view of a resource and the source
of the CRD schema, so constraints are declared once (as pydantic constraints or
CEL rules) and reach both the API server and Python callers.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    WithJsonSchema,
    model_serializer,
)
from pydantic.alias_generators import to_camel

GROUP = "coalmine.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

MAX_DURATION = timedelta(days=30)
"""Longest duration anywhere in the API: far from what date arithmetic can overflow."""

# A Pod's quantity syntax without the sign: no resource can be negative.
QUANTITY_PATTERN = (
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?[0-9]{1,2}))?$"
)
QUANTITY_MAX_LENGTH = 32
_QUANTITY = re.compile(
    r"(?P<number>([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"((?P<binary>[KMGTPE]i)|(?P<decimal>[numkMGTPE])|([eE](?P<exponent>[+-]?[0-9]{1,2})))?"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

# Label values and DNS-1123 names; both bound what the builders derive from them.
LABEL_VALUE_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def duration_seconds(text: str) -> float:
    """Seconds of a duration string matching DURATION_PATTERN (no overflow, any size)."""
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def _at_most_max_duration(text: str) -> str:
    if duration_seconds(text) > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {text!r} exceeds the maximum of {_MAX_DURATION_TEXT}")
    return text


_MAX_DURATION_TEXT = f"{int(MAX_DURATION.total_seconds()) // 3600}h"

Duration = Annotated[
    str,
    StringConstraints(pattern=DURATION_PATTERN, max_length=32),
    AfterValidator(_at_most_max_duration),
    Field(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"duration(self) <= duration('{_MAX_DURATION_TEXT}')",
                    "message": f"duration must be at most {_MAX_DURATION_TEXT} (30 days)",
                }
            ]
        }
    ),
]
"""Go-style duration string of at most 30 days; CEL's `duration()` parses the same syntax."""


def quantity_value(quantity: int | str) -> Decimal:
    """The number a quantity stands for (`500m` -> 0.5, `1Ki` -> 1024)."""
    if isinstance(quantity, int):
        return Decimal(quantity)
    match = _QUANTITY.fullmatch(quantity)
    if match is None:
        raise ValueError(f"invalid quantity {quantity!r}")
    number: Decimal = Decimal(match["number"])
    if match["binary"]:
        return number * Decimal(1024) ** _BINARY[match["binary"]]
    if match["decimal"]:
        return number.scaleb(_DECIMAL[match["decimal"]])
    if match["exponent"]:
        return number.scaleb(int(match["exponent"]))
    return number


Quantity = Annotated[
    Annotated[int, Field(ge=0, le=2**63 - 1)]
    | Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN, max_length=QUANTITY_MAX_LENGTH)],
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "maxLength": QUANTITY_MAX_LENGTH,
            "minimum": 0,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes resource quantity (`500m`, `1Gi`, `2`), as written in a Pod spec, without a
sign. A YAML number with a fraction (`cpu: 0.5`) cannot pass a CRD's structural schema
(int-or-string admits no float); quote it (`"0.5"`) or write `500m`."""

Image = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^[^\s]+$")]
"""A container image reference; the Pod API refuses surrounding whitespace."""

Message = Annotated[str, StringConstraints(max_length=4096)]
Counter = Annotated[int, Field(ge=0)]
KubeName = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
]
ModelVersionName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=DNS_SUBDOMAIN_PATTERN)
]
"""A ModelVersion's name: it also labels the check Job, so it fits a label value."""
LabelValue = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=LABEL_VALUE_PATTERN)
]


def parse_duration(text: str) -> timedelta:
    """Convert a validated duration string to a timedelta."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"invalid duration {text!r}; use e.g. 30s, 5m, 1h30m")
    return timedelta(seconds=duration_seconds(text))


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
        """The resource fragment as the API server stores it (aliases, no unset optionals,
        no empty maps)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @model_serializer(mode="wrap")
    def _without_empty_maps(self, handler: SerializerFunctionWrapHandler) -> Any:
        """A map field that is empty is left out rather than written as `{}`: server-side
        apply turns a map whose keys were all ours into null when it is applied as `{}`, and
        the CRD refuses null (a stable variant with no ready pod to scrape did that after an
        API-server outage). Absent reads back as the same empty default. An empty object
        (`pause: {}`) is a model, not a map, and stays."""
        data = handler(self)
        if isinstance(data, dict):
            for name, field in type(self).model_fields.items():
                value = getattr(self, name)
                if isinstance(value, dict) and not value:
                    data.pop(field.alias or name, None)
                    data.pop(name, None)
        return data


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
