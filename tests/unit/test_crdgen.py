"""The generated CRDs: structural, complete, deterministic and checked in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from coalmine.api import crdgen
from coalmine.api.schema import structural_schema
from coalmine.api.strategy import Step

REPO = Path(__file__).resolve().parents[2]
CRDS = {res.kind: crdgen.crd(res) for res in crdgen.RESOURCES}


def schema_of(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its dotted path."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")
    for i, sub in enumerate(schema.get("anyOf", [])):
        yield from nodes(sub, f"{path}|{i}")


def rules_at(kind: str, path: str) -> list[str]:
    node = dict(nodes(schema_of(kind)))[path]
    return [v["rule"] for v in node.get("x-kubernetes-validations", [])]


ALL_NODES = [(kind, path, node) for kind in CRDS for path, node in nodes(schema_of(kind))]


@pytest.mark.parametrize(("kind", "path", "node"), ALL_NODES, ids=lambda v: str(v)[:60])
def test_every_node_is_structural(kind: str, path: str, node: dict[str, Any]) -> None:
    assert not {"$ref", "$defs", "allOf", "title", "nullable", "exclusiveMinimum"} & set(node)
    assert {"type": "null"} not in node.get("anyOf", [])
    if node.get("x-kubernetes-int-or-string"):
        assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    elif not path.count("|"):
        assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}
    if "additionalProperties" in node:
        assert isinstance(node["additionalProperties"], dict)
        assert "properties" not in node
    if "default" in node:
        assert node["default"] is not None


@pytest.mark.parametrize(("kind", "path", "node"), ALL_NODES, ids=lambda v: str(v)[:60])
def test_cel_iterated_values_are_bounded(kind: str, path: str, node: dict[str, Any]) -> None:
    """The API server estimates CEL cost from maxItems/maxLength; unbounded data breaks it."""
    if kind == "ModelDeployment" or not path.startswith(".spec"):
        return
    if node.get("type") == "array":
        assert "maxItems" in node, path
    if node.get("type") == "string" and "enum" not in node:
        assert "maxLength" in node, path
    if node.get("type") == "object" and "additionalProperties" in node:
        assert "maxProperties" in node, path


def test_cel_rules_are_where_they_belong() -> None:
    assert rules_at("ModelVersion", ".spec")[0] == "self == oldSelf"
    assert any("isSorted()" in r for r in rules_at("RolloutStrategy", ".spec.steps"))
    assert any("isSorted()" in r for r in rules_at("ModelDeployment", ".spec.strategy.steps"))
    step_rules = rules_at("RolloutStrategy", ".spec.steps[]")
    assert any("has(self.setWeight)" in r and "size() == 1" in r for r in step_rules)
    md_rules = rules_at("ModelDeployment", ".spec")
    assert "has(self.strategyRef) != has(self.strategy)" in md_rules
    assert "!(has(self.replicas) && has(self.autoscaling))" in md_rules
    assert rules_at("ModelDeployment", ".spec.autoscaling") == [
        "self.minReplicas <= self.maxReplicas"
    ]
    assert any("metadata.name" in r for r in rules_at("ModelDeployment", ""))


def test_every_cel_rule_has_a_message() -> None:
    for kind, path, node in ALL_NODES:
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["message"].strip(), (kind, path, rule)


def test_weights_are_percentages() -> None:
    weight = dict(nodes(schema_of("RolloutStrategy")))[".spec.steps[].setWeight"]
    assert (weight["minimum"], weight["maximum"]) == (0, 100)


def test_descriptions_come_from_docstrings() -> None:
    spec = dict(nodes(schema_of("ModelDeployment")))
    assert "changing it starts a rollout" in spec[".spec.modelVersion"]["description"]
    assert "\n" not in spec[".spec.traffic.router"]["description"]
    assert schema_of("ModelVersion")["description"] == "A registered model artifact."


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_every_spec_field_is_documented(kind: str) -> None:
    spec = schema_of(kind)["properties"]["spec"]
    fields = [(path, node) for path, node in nodes(spec, ".spec") if path[-1] not in "]}0123456789"]
    undocumented = [path for path, node in fields if "description" not in node]
    assert undocumented == []


def test_defaults_and_enums_survive() -> None:
    spec = dict(nodes(schema_of("ModelDeployment")))
    assert spec[".spec.traffic"]["default"] == {"router": "kubernetes"}
    assert spec[".spec.serving"]["default"]["workers"] == 1
    assert spec[".spec.traffic.router"] == spec[".spec.traffic.router"] | {
        "default": "kubernetes",
        "enum": ["kubernetes", "gatewayAPI"],
    }
    assert "replicas" not in spec[".spec"].get("required", [])
    assert "default" not in spec[".spec.replicas"]  # a default would defeat "not both"
    mv = dict(nodes(schema_of("ModelVersion")))
    assert mv[".spec.format"]["enum"] == ["joblib", "pickle", "skops", "onnx"]
    assert set(mv[".spec"]["required"]) == {"model", "version", "uri", "sha256", "format"}


def test_quantities_accept_integers_and_strings() -> None:
    node = dict(nodes(schema_of("ModelDeployment")))[".spec.resources.requests{}"]
    assert node["x-kubernetes-int-or-string"] is True
    assert "pattern" in node


def test_names_columns_and_subresources() -> None:
    names = {kind: crd["spec"]["names"] for kind, crd in CRDS.items()}
    short = [s for n in names.values() for s in n["shortNames"]]
    assert not {"rs", "md", "mv", "deploy", "svc"} & set(short)
    assert len(short) == len(set(short))
    assert all(n["categories"] == ["coalmine"] for n in names.values())

    def columns(kind: str) -> list[str]:
        version = CRDS[kind]["spec"]["versions"][0]
        return [
            c["name"].upper() for c in version["additionalPrinterColumns"] if "priority" not in c
        ]

    assert columns("ModelDeployment") == [
        "STABLE",
        "CANARY",
        "WEIGHT",
        "PODS",
        "PHASE",
        "HEALTHY",
        "AGE",
    ]
    assert columns("ModelVersion") == ["MODEL", "VERSION", "FORMAT", "PHASE", "AGE"]
    assert columns("RolloutStrategy") == ["STEPS", "AGE"]
    for kind in CRDS:
        assert CRDS[kind]["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_status_declares_rollout_bookkeeping() -> None:
    status = schema_of("ModelDeployment")["properties"]["status"]["properties"]
    for name in (
        "observedGeneration",
        "phase",
        "stable",
        "canary",
        "currentStepIndex",
        "stepStartedAt",
        "analysisRun",
        "lastAnalysis",
        "history",
        "conditions",
        "url",
        "abortedRevision",
    ):
        assert name in status
    assert status["phase"]["enum"] == [
        "Pending",
        "Progressing",
        "Paused",
        "Healthy",
        "Degraded",
        "RolledBack",
    ]
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    for _, node in nodes(schema_of("ModelDeployment")):
        assert "x-kubernetes-preserve-unknown-fields" not in node


def test_inline_strategy_matches_the_rollout_strategy_spec() -> None:
    inline = dict(nodes(schema_of("ModelDeployment")))[".spec.strategy"]
    standalone = schema_of("RolloutStrategy")["properties"]["spec"]
    assert {k: v for k, v in inline.items() if k != "description"} == {
        k: v for k, v in standalone.items() if k != "description"
    }


def test_field_level_and_model_level_rules_merge() -> None:
    """A model's own CEL rules and a field's rules must both reach the node."""
    schema = structural_schema(Step)
    assert len(schema["x-kubernetes-validations"]) == 1
    assert schema["properties"]["analysis"]["x-kubernetes-validations"][0]["rule"].startswith(
        "duration(self.interval)"
    )


def test_render_is_deterministic() -> None:
    first = [crdgen.render(res) for res in crdgen.RESOURCES]
    assert first == [crdgen.render(res) for res in crdgen.RESOURCES]
    for text in first:
        assert text.startswith("# Generated")
        assert yaml.safe_load(text)["apiVersion"] == "apiextensions.k8s.io/v1"


def test_checked_in_crds_are_current(tmp_path: Path) -> None:
    assert crdgen.main([str(tmp_path)]) == 0
    generated = {p.name: p.read_text() for p in tmp_path.iterdir()}
    checked_in = {p.name: p.read_text() for p in (REPO / "crds").glob("coalmine.dev_*.yaml")}
    assert generated == checked_in, "crds/ is stale: run `python -m coalmine.api.crdgen crds`"


def test_check_mode_reports_stale_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    crdgen.write(tmp_path)
    assert crdgen.main(["--check", str(tmp_path)]) == 0
    target = tmp_path / crdgen.file_name(crdgen.RESOURCES[0])
    target.write_text(target.read_text() + "# edited\n")
    assert crdgen.main(["--check", str(tmp_path)]) == 1
    assert target.name in capsys.readouterr().err
