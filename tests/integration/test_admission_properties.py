"""Whatever the API server admits, the operator can deploy: a property over generated specs.

Specs are drawn from the CRDs' own schemas (so from the pydantic models they are generated
from): every typed node, pattern, bound and enum. The real API server judges them (server
dry-run, one kubectl call per batch); for each admitted ModelDeployment with its admitted
ModelVersion, every child the operator builds (stable and canary Deployments, Services,
HPA, HTTPRoute when the Gateway API is installed, the check Job) is server-dry-run too, after
the pure plan ran on it. None may be refused. The counts close pytest's output.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coalmine.api import ModelDeployment, ModelVersion, RolloutStrategy
from coalmine.api.crdgen import RESOURCES, crd
from coalmine.resources import build_deployment, build_hpa, build_service
from coalmine.resources.httproute import build_httproute
from coalmine.resources.validation_job import build_validation_job
from coalmine.rollout.observation import Observation
from coalmine.rollout.plan import plan
from tests.support.cluster import Cluster, ensure_namespace
from tests.support.crds import install_crds

pytestmark = pytest.mark.cluster

NAMESPACE = f"coalmine-admission-props-{uuid.uuid4().hex[:6]}"
API = "coalmine.dev/v1alpha1"
BATCHES = 12
BATCH = 12
Doc = dict[str, Any]
Schema = dict[str, Any]
COUNTS = {"specs": 0, "admitted": 0, "deployable": 0, "children": 0}
RESOURCE_KEYS = ["cpu", "memory", "ephemeral-storage", "example.com/gpu"]


def spec_schema(kind: str) -> Schema:
    res = next(r for r in RESOURCES if r.kind == kind)
    schema: Schema = crd(res)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]["spec"]  # type: ignore[no-any-return]


def strings(node: Schema) -> st.SearchStrategy[str]:
    longest = node.get("maxLength", 24)
    shortest = node.get("minLength", 0)
    if "pattern" in node:
        base = st.from_regex(node["pattern"], fullmatch=True)
    else:
        base = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=24)
    return base.filter(lambda s: shortest <= len(s) <= longest)


def values(node: Schema, path: str = "") -> st.SearchStrategy[Any]:
    """Values of one structural-schema node; optional fields appear now and then."""
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if node.get("x-kubernetes-int-or-string"):
        return st.integers(0, 64) | strings(node)
    kind = node.get("type")
    if kind == "object" and "additionalProperties" in node:
        keys = st.sampled_from(RESOURCE_KEYS) if "resources" in path else strings({"maxLength": 12})
        return st.dictionaries(keys, values(node["additionalProperties"], path), max_size=2)
    if kind == "object":
        required = set(node.get("required", []))
        fields = {
            name: values(sub, f"{path}.{name}") for name, sub in node.get("properties", {}).items()
        }

        @st.composite
        def objects(draw: st.DrawFn) -> Doc:
            return {
                name: draw(strategy)
                for name, strategy in fields.items()
                if name in required or draw(st.integers(0, 3)) == 0
            }

        return objects()
    if kind == "array":
        return st.lists(
            values(node["items"], f"{path}[]"),
            min_size=node.get("minItems", 0),
            max_size=min(node.get("maxItems", 3), max(3, node.get("minItems", 0))),
        )
    if kind == "integer":
        return st.integers(node.get("minimum", -5), min(node.get("maximum", 10**4), 10**4))
    if kind == "number":
        return st.floats(
            node.get("minimum", -1e3), node.get("maximum", 1e3), allow_nan=False, width=32
        )
    if kind == "boolean":
        return st.booleans()
    return strings(node)


MV_SPECS = values(spec_schema("ModelVersion"))
MD_SPECS = values(spec_schema("ModelDeployment"))
RS_SPECS = values(spec_schema("RolloutStrategy"))


@st.composite
def triples(draw: st.DrawFn) -> tuple[Doc, Doc, Doc]:
    """A ModelVersion, a RolloutStrategy and a ModelDeployment that names both."""
    tag = uuid.uuid4().hex[:10]
    mv = {"apiVersion": API, "kind": "ModelVersion", "metadata": {"name": f"mv-{tag}"}}
    mv["spec"] = draw(MV_SPECS)
    rs = {"apiVersion": API, "kind": "RolloutStrategy", "metadata": {"name": f"rs-{tag}"}}
    rs["spec"] = draw(RS_SPECS)
    spec = draw(MD_SPECS) | {"modelVersion": f"mv-{tag}"}
    if "strategyRef" in spec:
        spec["strategyRef"] = {"name": f"rs-{tag}"}
    md = {"apiVersion": API, "kind": "ModelDeployment", "metadata": {"name": f"md-{tag}"}}
    md["spec"] = spec
    return mv, rs, md


@pytest.fixture(scope="module")
def kube(cluster: Cluster) -> Iterator[Cluster]:
    install_crds(cluster)
    ensure_namespace(cluster, NAMESPACE, [("pod-security.kubernetes.io/enforce", "restricted")])
    yield cluster
    cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def summary() -> str | None:
    """The counts of this session's run, for the end of pytest's output (conftest.py)."""
    if not COUNTS["specs"]:
        return None
    return (
        f"admission property: {COUNTS['specs']} generated specs, {COUNTS['admitted']} admitted,"
        f" {COUNTS['deployable']} ModelDeployments deployed on paper,"
        f" {COUNTS['children']} children server-dry-run, none refused"
    )


def dry_run(kube: Cluster, docs: list[Doc]) -> tuple[set[str], str]:
    """Names (kind/name, lowercase kind) the server admits, and its complaints."""
    proc = kube.kubectl(
        "create",
        "--dry-run=server",
        "-n",
        NAMESPACE,
        "-o",
        "name",
        "-f",
        "-",
        input=yaml.safe_dump_all(docs),
        check=False,
    )
    admitted = {
        line.split(".", 1)[0] + "/" + line.rsplit("/", 1)[-1] for line in proc.stdout.split()
    }
    return admitted, proc.stderr


def children(md: ModelDeployment, mv: ModelVersion, gateway: bool) -> list[Doc]:
    objects = [
        build_deployment(md, mv, "stable", md.spec.stable_replicas),
        build_deployment(md, mv, "canary", 1),
        build_service(md),
        build_service(md, "stable"),
        build_service(md, "canary"),
        build_validation_job(mv),
    ]
    hpa = build_hpa(md)
    if hpa is not None:
        objects.append(hpa)
    if gateway and md.spec.traffic.gateway_api is not None:
        objects.append(build_httproute(md, 20, 50))
    return objects


def gateway_installed(kube: Cluster) -> bool:
    proc = kube.kubectl("get", "crd", "httproutes.gateway.networking.k8s.io", check=False)
    return proc.returncode == 0


@settings(
    max_examples=BATCHES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(triples(), min_size=BATCH, max_size=BATCH))
def test_what_is_admitted_deploys(kube: Cluster, batch: list[tuple[Doc, Doc, Doc]]) -> None:
    docs = [doc for triple in batch for doc in triple]
    admitted, _ = dry_run(kube, docs)
    COUNTS["specs"] += len(docs)
    COUNTS["admitted"] += sum(
        f"{d['kind'].lower()}/{d['metadata']['name']}" in admitted for d in docs
    )
    gateway = gateway_installed(kube)
    built: list[Doc] = []
    for mv_doc, rs_doc, md_doc in batch:
        names = [f"{d['kind'].lower()}/{d['metadata']['name']}" for d in (mv_doc, rs_doc, md_doc)]
        if names[0] not in admitted or names[2] not in admitted:
            continue
        # What the server admits, the operator must parse.
        mv_doc["metadata"] |= {"namespace": NAMESPACE, "uid": str(uuid.uuid4())}
        md_doc["metadata"] |= {"namespace": NAMESPACE, "uid": str(uuid.uuid4()), "generation": 1}
        mv = ModelVersion.model_validate(mv_doc)
        md = ModelDeployment.model_validate(md_doc)
        strategy = md.spec.strategy
        if strategy is None:
            if names[1] not in admitted:
                continue
            strategy = RolloutStrategy.model_validate(rs_doc).spec
        observation = Observation(
            now=datetime.now(UTC),
            target=mv,
            target_valid=True,
            strategy=strategy,
            stable=None,
            canary=None,
            measurement=None,
            commands={},
            model_versions={mv.metadata.name: mv},
        )
        plan(md, observation)
        COUNTS["deployable"] += 1
        built.extend(children(md, mv, gateway))
    if not built:
        return
    accepted, stderr = dry_run(kube, built)
    COUNTS["children"] += len(built)
    assert len(accepted) == len(built), stderr
