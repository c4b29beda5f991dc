"""`make demo` as a test (issue 7): the demo's own code (hack/demo/demo.py), without the
pauses meant for humans, in namespaces of its own (`demo-t-*`, a distinct Helm release).

It asserts the story the demo tells: v2 promoted, v3 rolled back by prediction shift, no
failed client request (v3 only shifts predictions, so none may fail even at its canary
share), a report naming the rollback, and that report rendered by a real headless browser.
"""

from __future__ import annotations

import importlib.util
import struct
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from coalmine.cli import report
from tests.support.cluster import REPO, Cluster

CHROMIUM_MISSING = (
    "chromium is not installed: the report's screenshot needs Debian's `chromium`"
    " (make host-deps installs it)"
)


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("coalmine_demo", REPO / "hack/demo/demo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


demo = load_demo()


@pytest.fixture(scope="module")
def config(cluster: Cluster, crds: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Where the demo runs; `down` removes it all afterwards. The session's CRDs are there
    first (`crds`), so the demo never deletes CRDs other tests use."""
    suffix = uuid.uuid4().hex[:6]
    cfg = demo.Config(
        namespace=f"demo-t-{suffix}",
        system_namespace=f"demo-t-sys-{suffix}",
        release=f"demo-t-{suffix}",
        out=tmp_path_factory.mktemp("demo"),
        pace="fast",
        kubeconfig=cluster.kubeconfig,
    )
    yield cfg
    demo.down(cfg)


@pytest.fixture(scope="module")
def result(config: Any) -> Any:
    return demo.run(config)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_v2_is_promoted_and_v3_rolled_back_by_prediction_shift(
    cluster: Cluster, config: Any, result: Any
) -> None:
    v2, v3 = result.rollouts
    assert (v2.model_version, v2.outcome) == ("iris-v2", "Promoted"), v2
    assert (v3.model_version, v3.outcome) == ("iris-v3", "RolledBack"), v3
    assert "prediction-shift" in v3.reason, v3.reason
    assert v3.first_failed_to_rollback is not None
    md = cluster.get("modeldeployment", "iris", config.namespace)
    status = md["status"]
    assert status["phase"] == "RolledBack"
    assert status["stable"]["modelVersion"] == "iris-v2"
    assert status["stable"]["weight"] == 100
    outcomes = [(h["modelVersion"], h["outcome"]) for h in status["history"]]
    assert outcomes[-2:] == [("iris-v2", "Promoted"), ("iris-v3", "RolledBack")]
    record = status["rolloutRecord"]
    assert record["modelVersion"] == "iris-v3"
    assert record["points"][-1]["outcome"] == "RolledBack"
    assert record["points"][-1]["canaryWeight"] == 0
    assert any(p.get("outcome") == "Failed" for p in record["points"])


def test_no_client_request_failed(result: Any) -> None:
    v2, v3 = result.rollouts
    # Both rollouts got real traffic at the canary (the client's answers name the version).
    assert v2.served_by.get("v2", 0) > 0, v2.served_by
    assert v3.served_by.get("v3", 0) > 0, v3.served_by
    assert v2.requests_failed == 0, result.load["errors"]
    assert v3.requests_failed == 0, result.load["errors"]
    assert result.load["ok"] > 100
    assert result.load["failed"] == 0, result.load["errors"]


def test_the_report_names_the_rollback(result: Any) -> None:
    page = result.report_html.read_text()
    assert result.report_html.name == "iris-rev3.html"
    assert "ROLLED BACK" in page
    assert "prediction-shift" in page
    assert "time to rollback" in page
    assert page.count("<svg") == 4
    assert page.count('class="end-marker"') == 4
    assert "<script" not in page


def test_the_report_renders_in_headless_chromium(result: Any, tmp_path: Path) -> None:
    assert report.chromium() is not None, CHROMIUM_MISSING
    # the demo's own PNG
    assert result.report_png is not None
    assert result.report_png.stat().st_size > 20_000
    assert png_size(result.report_png) == (1200, 900)
    # and one taken here, from the page on disk
    shot = tmp_path / "report.png"
    report.screenshot(result.report_html, shot)
    assert shot.stat().st_size > 20_000, "a blank page compresses to a few kB"
    assert png_size(shot) == (1200, 900)
