"""`make demo` as a test: the README's command itself, run as `make demo` runs it
(`DEMO_PACE=fast`, the cluster the tests use named by KUBECONFIG), in namespaces of its own
(`demo-t-*`, a distinct Helm release); `make demo-down` removes it afterwards.

With COALMINE_DEMO=ran it runs nothing and checks the demo that just ran with its defaults
(`.ci/run` does so: it runs `DEMO_PACE=fast make demo` right after `make test`, so CI does not
run the demo twice); with COALMINE_DEMO=after it is skipped, because that check comes later.

It asserts the story the demo tells, from the result.json it writes: v2 promoted, v3 rolled
back by prediction shift, no failed client request (v3 only shifts predictions, so none may
fail even at its canary share), a report naming the rollback, and that report rendered by a
real headless browser.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from coalmine.cli import report
from tests.support.cluster import REPO, Cluster
from tests.support.steps import tail

MODE = "COALMINE_DEMO"
RAN, AFTER = "ran", "after"
CHROMIUM_MISSING = (
    "chromium is not installed: the report's screenshot needs Debian's `chromium`"
    " (make host-deps installs it)"
)


def make(target: str, env: dict[str, str], log: Path, timeout: float) -> None:
    with log.open("w") as out:
        proc = subprocess.run(
            ["make", "-s", target], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, timeout=timeout, check=False,
        )  # fmt: skip
    assert proc.returncode == 0, f"make {target} failed (exit {proc.returncode}):\n{tail(log, 40)}"


@pytest.fixture(scope="module")
def config(
    cluster: Cluster, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace]:
    """Where the demo runs; `make demo-down` removes it all afterwards. The session's CRDs
    are there first (`crds`), so the demo never deletes CRDs other tests use."""
    mode = os.environ.get(MODE, "")
    if mode == AFTER:
        pytest.skip(f"{MODE}={AFTER}: the demo runs after this session, and is checked then")
    if mode == RAN:  # the demo as README runs it: its default namespace and output
        yield SimpleNamespace(namespace="coalmine-demo", out=REPO / "_out" / "demo", env=None)
        return
    request.getfixturevalue("crds")
    suffix = uuid.uuid4().hex[:6]
    out = tmp_path_factory.mktemp("demo")
    env = {
        **os.environ,
        "DEMO_PACE": "fast",
        "DEMO_NAMESPACE": f"demo-t-{suffix}",
        "DEMO_SYSTEM_NAMESPACE": f"demo-t-sys-{suffix}",
        "DEMO_RELEASE": f"demo-t-{suffix}",
        "DEMO_OUT": str(out),
        "KUBECONFIG": str(cluster.kubeconfig),
    }
    cfg = SimpleNamespace(namespace=env["DEMO_NAMESPACE"], out=out, env=env)
    yield cfg
    make("demo-down", env, out / "make-demo-down.log", timeout=600)


@pytest.fixture(scope="module")
def result(config: SimpleNamespace) -> Any:
    log = config.out / "make-demo.log"  # .ci/run tees its own `make demo` there
    if config.env is not None:
        make("demo", config.env, log, timeout=1800)
        print(log.read_text())  # the demo's own narration, in the test's output
    data = json.loads((config.out / "result.json").read_text())
    return SimpleNamespace(
        rollouts=[SimpleNamespace(**r) for r in data["rollouts"]],
        load=data["load"],
        report_html=Path(data["report_html"]),
        report_png=Path(data["report_png"]) if data["report_png"] else None,
        narration=log.read_text(),
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_v2_is_promoted_and_v3_rolled_back_by_prediction_shift(
    cluster: Cluster, config: SimpleNamespace, result: Any
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


def test_the_demo_narrates_every_act_and_streams_build_progress(result: Any) -> None:
    for act in ("1. Cluster", "2. Images", "3. Coalmine", "4. Models", "5. Serve v1",
                "6. Roll out v2", "7. Roll out v3", "8. Report", "Summary"):  # fmt: skip
        assert f"== {act}" in result.narration, act
    # the image scripts' progress lines come through (e.g. "image up to date: ..." when cached)
    assert "  image up to date: " in result.narration or "  image ready: " in result.narration


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
