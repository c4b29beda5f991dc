"""Generate the CustomResourceDefinitions in `crds/` from the API models.

Run `python -m coalmine.api.crdgen crds` to write them, or add `--check` to fail
when the checked-in files differ from what the models say.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from coalmine.api.base import GROUP, VERSION, cel, validations
from coalmine.api.deployment import ModelDeployment, ModelDeploymentSpec, ModelDeploymentStatus
from coalmine.api.modelversion import ModelVersion, ModelVersionSpec, ModelVersionStatus
from coalmine.api.schema import Schema, structural_schema
from coalmine.api.strategy import RolloutStrategy, RolloutStrategySpec, RolloutStrategyStatus

HEADER = "# Generated from operator/coalmine/api by `python -m coalmine.api.crdgen`. Do not edit.\n"
CATEGORIES = ["coalmine"]


@dataclass(frozen=True)
class Column:
    """An additionalPrinterColumn of `kubectl get`."""

    name: str
    json_path: str
    type: str = "string"
    priority: int = 0
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "jsonPath": self.json_path, "type": self.type}
        if self.priority:
            column["priority"] = self.priority
        if self.description:
            column["description"] = self.description
        return column


AGE = Column("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class Resource:
    """Everything that makes one CRD."""

    kind: str
    plural: str
    short_names: list[str]
    resource: type[BaseModel]
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: list[Column]
    rules: list[dict[str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.plural}.{GROUP}"


RESOURCES = [
    Resource(
        kind="ModelVersion",
        plural="modelversions",
        short_names=["mver"],
        resource=ModelVersion,
        spec=ModelVersionSpec,
        status=ModelVersionStatus,
        columns=[
            Column("Model", ".spec.model"),
            Column("Version", ".spec.version"),
            Column("Format", ".spec.format"),
            Column("Phase", ".status.phase"),
            AGE,
            Column("Approved-By", ".metadata.annotations.coalmine\\.dev/approved-by", priority=1),
            Column("URI", ".spec.uri", priority=1),
        ],
        # The name labels the check Job (coalmine.dev/modelversion), so it fits a label value.
        rules=[
            cel(
                "size(self.metadata.name) <= 63",
                "ModelVersion name must be at most 63 characters (it labels the check Job)",
            )
        ],
    ),
    Resource(
        kind="RolloutStrategy",
        plural="rolloutstrategies",
        short_names=["rstrat"],
        resource=RolloutStrategy,
        spec=RolloutStrategySpec,
        status=RolloutStrategyStatus,
        # JSONPath cannot count, so the operator writes the count into status.
        columns=[
            Column("Steps", ".status.steps", "integer"),
            AGE,
            Column("Summary", ".status.summary", priority=1),
        ],
    ),
    Resource(
        kind="ModelDeployment",
        plural="modeldeployments",
        short_names=["mdep"],
        resource=ModelDeployment,
        spec=ModelDeploymentSpec,
        status=ModelDeploymentStatus,
        columns=[
            Column("Stable", ".status.stable.version"),
            Column("Canary", ".status.canary.version"),
            Column("Weight", ".status.canary.weight", "integer"),
            Column("Pods", ".status.pods"),
            Column("Phase", ".status.phase"),
            Column("Healthy", '.status.conditions[?(@.type=="ModelHealthy")].status'),
            AGE,
            Column("Ready", '.status.conditions[?(@.type=="Ready")].status', priority=1),
            Column("Model-Version", ".spec.modelVersion", priority=1),
            Column("Message", ".status.message", priority=1),
        ],
        # The name becomes Service names (DNS-1035 labels) and label values (<= 63 chars).
        rules=[
            cel(
                "size(self.metadata.name) <= 63"
                " && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
                "ModelDeployment name must be at most 63 characters of lowercase letters,"
                " digits and '-', starting with a letter (it names the Services)",
            )
        ],
    ),
]


def _object_schema(res: Resource) -> Schema:
    properties: Schema = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": structural_schema(res.spec),
        "status": structural_schema(res.status, key_rules=False),
    }
    schema: Schema = {
        "type": "object",
        "description": " ".join((res.resource.__doc__ or res.kind).split()),
        "properties": properties,
        "required": ["spec"],
    }
    if res.rules:
        schema.update(validations(*res.rules))
    return schema


def crd(res: Resource) -> dict[str, Any]:
    """The CustomResourceDefinition of one resource."""
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": _object_schema(res)},
        "additionalPrinterColumns": [c.to_json() for c in res.columns],
        "subresources": {"status": {}},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": res.name},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": res.kind,
                "listKind": f"{res.kind}List",
                "plural": res.plural,
                "singular": res.kind.lower(),
                "shortNames": res.short_names,
                "categories": CATEGORIES,
            },
            "versions": [version],
        },
    }


def render(res: Resource) -> str:
    """The YAML file text of one CRD (sorted keys, so output is stable)."""
    return HEADER + yaml.safe_dump(crd(res), sort_keys=True, width=100, allow_unicode=True)


def file_name(res: Resource) -> str:
    return f"{GROUP}_{res.plural}.yaml"


def write(directory: Path) -> list[Path]:
    """Write every CRD into `directory`; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for res in RESOURCES:
        path = directory / file_name(res)
        path.write_text(render(res))
        paths.append(path)
    return paths


def stale(directory: Path) -> list[str]:
    """Names of CRD files in `directory` that are missing or differ from the models."""
    return [
        file_name(res)
        for res in RESOURCES
        if not (directory / file_name(res)).is_file()
        or (directory / file_name(res)).read_text() != render(res)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coalmine.api.crdgen", description=__doc__)
    parser.add_argument("directory", type=Path, help="where the CRD YAML files live")
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale(args.directory)
        for name in outdated:
            print(f"stale: {args.directory / name} (run `make crds`)", file=sys.stderr)
        return 1 if outdated else 0
    for path in write(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
