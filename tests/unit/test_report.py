"""`coalmine report`: the pure page renderer (status -> self-contained HTML with SVG)."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

from coalmine.cli.report import render
from coalmine.cli.shadow import ShadowView

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
REASON = "analysis failed (1 failed measurements, limit 0): prediction-shift 0.41 > max 0.2"


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def judged(seconds: float, weight: int, outcome: str, shift: float) -> dict[str, Any]:
    shift_outcome = "Failed" if shift > 0.2 else "Successful"
    return {
        "time": at(seconds),
        "stepIndex": 1,
        "canaryWeight": weight,
        "phase": "Progressing",
        "outcome": outcome,
        "metrics": {
            "error-rate": {
                "canary": 0.0, "stable": 0.001, "outcome": "Successful",
                "kind": "errorRate", "max": 0.05,
            },
            "latency-p99": {
                "canary": 12.5, "stable": 9.0, "outcome": "Successful",
                "kind": "latencyP99", "max": 40,
            },
            "prediction-shift": {
                "canary": shift, "outcome": shift_outcome, "kind": "predictionShift", "max": 0.2,
            },
        },
    }  # fmt: skip


def deployment(points: list[dict[str, Any]] | None) -> dict[str, Any]:
    record = None
    if points is not None:
        record = {
            "revision": 3,
            "modelVersion": "iris-v3",
            "version": "v3",
            "fromVersion": "v2",
            "startedAt": at(0),
            "points": points,
        }
    return {
        "apiVersion": "coalmine.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "coalmine-demo"},
        "spec": {"modelVersion": "iris-v3", "strategyRef": {"name": "canary"}},
        "status": {"phase": "RolledBack", "rolloutRecord": record},
    }


def rolled_back(reason: str = REASON) -> dict[str, Any]:
    return deployment(
        [
            {"time": at(0), "stepIndex": 0, "canaryWeight": 0, "phase": "Progressing"},
            {"time": at(8), "stepIndex": 1, "canaryWeight": 25, "phase": "Progressing"},
            judged(14, 25, "Successful", 0.05),
            judged(19, 25, "Failed", 0.41),
            {
                "time": at(19), "stepIndex": 1, "canaryWeight": 0, "phase": "RolledBack",
                "outcome": "RolledBack", "message": reason,
            },
        ]
    )  # fmt: skip


def svgs(page: str) -> list[ET.Element]:
    """Every inline SVG, parsed as XML: each must be well-formed."""
    return [ET.fromstring(s) for s in re.findall(r"<svg\b.*?</svg>", page, flags=re.S)]


def test_a_rolled_back_rollout_is_drawn_with_its_verdict_reason_and_marker() -> None:
    page = render(rolled_back())
    assert page.startswith("<!DOCTYPE html>")
    assert "ROLLED BACK" in page
    assert "v2 (stable) → v3 (iris-v3)" in page
    assert html.escape(REASON) in page
    assert "time to rollback" in page
    assert "19 s after the rollout started" in page
    assert "failed verdict → rollback" in page
    charts = svgs(page)
    # weight, error rate, latency, prediction shift: each marks where the rollback happened
    assert len(charts) == 4
    assert page.count('class="end-marker"') == 4
    assert "ROLLED BACK at 19 s" in page
    assert "Error rate per variant (error-rate)" in page
    assert "Latency p99 per variant (latency-p99)" in page
    assert "Prediction shift, canary vs stable (prediction-shift)" in page


def test_every_verdict_is_a_marker_on_the_weight_chart_and_its_metrics() -> None:
    page = render(rolled_back())
    # 2 verdicts on the weight line, and 2 per metric chart (3 charts)
    assert (
        page.count('class="verdict verdict-successful"')
        + page.count('class="verdict verdict-failed"')
        == 2 + 2 * 3
    )
    # the failed measurement failed only on prediction shift: one failed mark on the weight
    # line and one on the shift chart
    assert page.count('class="verdict verdict-failed"') == 2
    assert "<td>Failed</td>" in page
    assert "prediction-shift Failed: canary 0.41" in page


def test_the_page_is_self_contained() -> None:
    page = render(rolled_back())
    assert "<script" not in page
    assert "<link" not in page
    assert "src=" not in page
    assert "url(" not in page
    assert re.findall(r"https?://[^\s\"']+", page) == ["http://www.w3.org/2000/svg"] * 4


def test_text_from_status_is_escaped() -> None:
    page = render(rolled_back(reason="canary <script>alert(1)</script> & more"))
    assert "<script>" not in page
    assert "canary &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert len(svgs(page)) == 4


def test_a_promotion_is_labelled_as_such() -> None:
    md = deployment(
        [
            {"time": at(0), "stepIndex": 0, "canaryWeight": 0, "phase": "Progressing"},
            {"time": at(5), "stepIndex": 1, "canaryWeight": 25, "phase": "Progressing"},
            judged(12, 25, "Successful", 0.02),
            {"time": at(30), "stepIndex": 4, "canaryWeight": 100, "phase": "Progressing"},
            {
                "time": at(40), "stepIndex": 4, "canaryWeight": 100, "phase": "Healthy",
                "outcome": "Promoted", "message": "passed setWeight 25, analysis",
            },
        ]
    )  # fmt: skip
    page = render(md)
    assert "PROMOTED" in page
    assert "ROLLED BACK" not in page
    assert "time to promotion" in page
    assert "PROMOTED at 40 s" in page
    assert page.count('class="end-marker"') == 4


def test_a_rollout_in_progress_has_no_end_marker() -> None:
    md = deployment(
        [
            {"time": at(0), "stepIndex": 0, "canaryWeight": 0, "phase": "Progressing"},
            {"time": at(5), "stepIndex": 1, "canaryWeight": 25, "phase": "Progressing"},
            judged(12, 25, "Inconclusive", 0.02),
        ]
    )
    page = render(md)
    assert "IN PROGRESS" in page
    assert "end-marker" not in page
    assert "time to rollback" not in page
    assert len(svgs(page)) == 4


def test_without_a_record_the_page_says_so() -> None:
    page = render(deployment(None))
    assert "No rollout recorded yet" in page
    assert "<svg" not in page


def test_time_ticks_are_round_seconds() -> None:
    page = render(rolled_back())  # 19 s of rollout: a tick every 5 s
    ticks = re.findall(r'class="tick" text-anchor="middle">([^<]+)<', page)
    assert ticks[:4] == ["0 s", "5 s", "10 s", "15 s"]
    assert len(ticks) == 4 * 4  # the same axis under each of the 4 charts


def test_the_audit_trail_names_the_approver_and_each_command() -> None:
    md = rolled_back()
    md["status"]["history"] = [
        {
            "revision": 3, "modelVersion": "iris-v3", "version": "v3", "outcome": "Aborted",
            "time": at(19), "reason": "abort requested by dan",
            "approval": {"by": "grace", "groups": ["ml-leads"]},
            "commands": [
                {"command": "promote", "by": "carol", "time": at(10)},
                {"command": "abort", "by": "<dan>", "time": at(19)},
            ],
        },
        {
            "revision": 2, "modelVersion": "iris-v2", "version": "v2", "outcome": "Promoted",
            "time": at(-60), "approval": {"by": "mallory"},
        },
    ]  # fmt: skip
    page = render(md)
    trail = page[page.index("<h2>Audit trail</h2>") :]
    assert "approved by grace (groups ml-leads)" in trail
    assert "promote by carol at 2026-01-01 12:00:10" in trail
    assert "abort by &lt;dan&gt;" in trail
    assert "mallory" not in trail  # another revision's approval


def test_without_approval_or_commands_there_is_no_audit_trail() -> None:
    assert "Audit trail" not in render(rolled_back())


def test_a_shadow_rollout_draws_agreement_and_its_failed_mark() -> None:
    failed = judged(19, 0, "Failed", 0.11)
    failed["metrics"]["agreement"] = {
        "canary": 0.0, "outcome": "Failed", "kind": "agreement", "min": 0.95,
    }  # fmt: skip
    passed = judged(14, 0, "Inconclusive", 0.1)
    passed["metrics"]["agreement"] = {"outcome": "Inconclusive", "kind": "agreement", "min": 0.95}
    start = {"time": at(0), "stepIndex": 0, "canaryWeight": 0, "phase": "Progressing"}
    md = deployment([start, passed, failed])
    page = render(md)
    assert "Agreement with stable on copied rows (agreement)" in page
    assert "agreement Failed: canary 0" in page
    assert "Prediction delta" not in page  # a classifier's rollout measures none


def test_a_shadow_view_shows_agreement_confusion_and_escaped_examples() -> None:
    view = ShadowView(
        "iris-v3",
        pods=2,
        compared=200,
        agreeing=0,
        confusion={("0", "2"): 120, ("1", "0"): 80},
        examples=({"time": 1.0, "inputs": [5.1, "<b>"], "stable": 0, "canary_answer": 2},),
        unread=("iris-stable-b: Forbidden",),
    )
    page = render(rolled_back(), view)
    assert "Shadow comparison with stable" in page
    assert "200 rows compared by 2 stable pod(s); the canary agreed on 0 (0.0%)" in page
    assert "<th>stable 0</th>" in page
    assert "<th>canary 2</th>" in page
    assert '<td class="bad">120</td>' in page
    assert "&lt;b&gt;" in page
    assert "<b>" not in page.split("Shadow comparison")[1]
    assert "not read: iris-stable-b: Forbidden" in page
    assert "Shadow comparison" not in render(rolled_back())
