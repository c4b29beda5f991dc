"""`coalmine status`: the rollout rendered as a timeline."""

from __future__ import annotations

from typing import Any

from coalmine.api import ModelDeployment
from coalmine.api.deployment import HistoryEntry, Pin, Serving, VariantStatus
from coalmine.api.strategy import RolloutStrategySpec
from coalmine.cli.timeline import audit_lines, render, variant_line
from tests.integration.test_admission import model_deployment

STEPS = RolloutStrategySpec.model_validate(
    {
        "steps": [
            {"setWeight": 20},
            {
                "analysis": {
                    "interval": "5s",
                    "count": 2,
                    "metrics": [
                        {
                            "name": "error-rate",
                            "provider": "builtin",
                            "builtin": {"metric": "errorRate"},
                            "threshold": {"max": 0.05},
                        }
                    ],
                }
            },
            {"pause": {}},
        ]
    }
)


def md(status: dict[str, Any] | None) -> ModelDeployment:
    doc = model_deployment("iris")
    doc["metadata"] |= {"namespace": "ml", "uid": "uid-1"}
    if status is not None:
        doc["status"] = status
    return ModelDeployment.model_validate(doc)


def test_unreconciled_deployment_says_so() -> None:
    assert "not reconciled yet" in render(md(None), STEPS, [])


def test_rolled_back_rollout_marks_the_failed_step_and_shows_the_figures() -> None:
    status = {
        "phase": "RolledBack",
        "message": "analysis failed: error-rate 0.31 > max 0.05",
        "stable": {"modelVersion": "iris-v1", "version": "v1", "revision": 1, "weight": 100},
        "canary": {"modelVersion": "iris-v3", "version": "v3", "revision": 2, "weight": 0},
        "currentStepIndex": 1,
        "lastAnalysis": {
            "revision": 2,
            "stepIndex": 1,
            "outcome": "Failed",
            "time": "2026-11-27T12:00:05Z",
            "metrics": [
                {
                    "name": "error-rate",
                    "outcome": "Failed",
                    "value": 0.31,
                    "stableValue": 0.0,
                    "sampleCount": 420,
                }
            ],
        },
        "history": [
            {
                "revision": 2,
                "modelVersion": "iris-v3",
                "version": "v3",
                "outcome": "RolledBack",
                "reason": "error-rate",
                "time": "2026-11-27T12:00:05Z",
            }
        ],
    }
    events = [
        {
            "type": "Warning",
            "reason": "RolledBack",
            "message": "error-rate 0.31",
            "lastTimestamp": "2026-11-27T12:00:05Z",
        }
    ]
    text = render(md(status), STEPS, events)
    lines = text.splitlines()
    assert "  phase   RolledBack: analysis failed: error-rate 0.31 > max 0.05" in lines
    assert "  ✓  1  setWeight 20%" in lines
    assert any(line.startswith("  ✗  2  analysis 2 x every 5s") for line in lines)
    assert "    3  pause until promote" in lines[lines.index("steps") + 3]
    assert any("error-rate" in line and "0.31" in line and "420" in line for line in lines)
    assert any("12:00:05" in line and "RolledBack" in line for line in lines)
    assert any(line.startswith("  rev 2") and "iris-v3" in line for line in lines)


def test_a_variant_shows_its_digest_what_changed_and_its_real_share() -> None:
    pin = Pin(
        model_version_uid="u",
        sha256="5f1c" + "0" * 60,
        image="coalmine/serving:0.1.0",
        serving=Serving(),
        template_hash="abc",
    )
    v = VariantStatus(
        model_version="iris-v1",
        version="v1",
        revision=3,
        weight=20,
        traffic_share=33,
        pin=pin,
        changes=["resources"],
    )
    assert variant_line(v) == (
        "v1 (iris-v1, rev 3, sha256 5f1c00000000, changed: resources), weight 20% (gets 33%)"
    )


def test_history_shows_who_approved_who_commanded_and_the_verdict() -> None:
    entry = HistoryEntry.model_validate(
        {
            "revision": 4, "modelVersion": "iris-v4", "version": "v4", "outcome": "RolledBack",
            "time": "2026-01-01T12:00:30Z", "reason": "analysis failed",
            "approval": {"by": "grace"},
            "commands": [{"command": "retry", "time": "2026-01-01T12:00:01Z"}],
            "analysis": {
                "revision": 4, "stepIndex": 1, "outcome": "Failed",
                "time": "2026-01-01T12:00:29Z",
                "metrics": [
                    {"name": "error-rate", "outcome": "Failed", "value": 0.31,
                     "stableValue": 0.01},
                ],
            },
        }
    )  # fmt: skip
    assert audit_lines(entry) == [
        "approved by grace",
        "retry by an unnamed author at 2026-01-01 12:00:01",
        "verdict Failed at step 2: error-rate 0.31 (stable 0.01) Failed",
    ]
    page = render(md({"phase": "RolledBack", "history": [entry.to_json()]}), STEPS, [])
    assert "      approved by grace" in page.splitlines()


def test_the_monitoring_panel_shows_each_check_its_figure_and_since_when() -> None:
    status = {
        "phase": "Healthy",
        "conditions": [
            {
                "type": "ModelHealthy",
                "status": "False",
                "reason": "OutOfDistribution",
                "message": "stable v1: ood 0.40 > max 0.05",
                "lastTransitionTime": "2026-01-01T10:00:10Z",
            }
        ],
        "monitoring": {
            "measuredAt": "2026-01-01T10:00:20Z",
            "checks": [
                {
                    "name": "ood",
                    "variant": "stable",
                    "version": "v1",
                    "state": "Firing",
                    "since": "2026-01-01T10:00:10Z",
                    "value": 0.4,
                    "message": "ood 0.40 > max 0.05",
                },
                {"name": "accuracy", "variant": "stable", "version": "v1"},
            ],
        },
    }
    text = render(md(status), None, [])
    assert "monitoring  ModelHealthy False (OutOfDistribution), measured at 10:00:20" in text
    lines = text.splitlines()
    firing = next(line for line in lines if "ood" in line and "Firing" in line)
    assert firing.split()[:6] == ["✗", "ood", "stable", "v1", "0.4", "Firing"]
    assert "10:00:10  ood 0.40 > max 0.05" in firing
    waiting = next(line for line in lines if "accuracy" in line)
    assert waiting.split()[:6] == ["?", "accuracy", "stable", "v1", "-", "Unknown"]


def test_no_monitoring_no_panel() -> None:
    assert "monitoring" not in render(md({"phase": "Healthy"}), None, [])


def test_the_hpa_floor_held_after_a_rollout_is_shown_with_its_end() -> None:
    status = {
        "phase": "Healthy",
        "stable": {"modelVersion": "iris-v2", "version": "v2", "revision": 2, "weight": 100},
        "stableFloor": 4,
        "stableFloorUntil": "2026-11-27T12:05:00Z",
    }
    out = render(md(status), STEPS, [])
    assert "hpa     holds at least 4 stable pods until 12:05:00" in out
    assert "hpa " not in render(md({**status, "stableFloor": None}), STEPS, [])
