"""The ModelVersion verdict from its check Job."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from coalmine.api import ModelVersion
from coalmine.resources.validation_job import build_validation_job, validation_job_name
from coalmine.validation import plan_validation
from tests.integration.test_admission import model_version

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def mv(status: dict[str, Any] | None = None) -> ModelVersion:
    doc = model_version()
    doc["metadata"] |= {"namespace": "ml", "uid": "uid-1", "generation": 1}
    if status is not None:
        doc["status"] = status
    return ModelVersion.model_validate(doc)


def job(condition: str | None, message: str = "") -> dict[str, Any]:
    conditions = [{"type": condition, "status": "True", "message": message}] if condition else []
    return {"metadata": {"name": "x"}, "status": {"conditions": conditions}}


def conditions(status: Any) -> dict[str, str]:
    return {c.type: c.status for c in status.conditions}


def test_without_a_job_one_is_created_and_the_version_is_pending() -> None:
    plan = plan_validation(mv(), None, None, NOW)
    assert plan.create_job
    assert plan.status.phase == "Pending"
    assert conditions(plan.status) == {"Ready": "False", "Reconciling": "True", "Stalled": "False"}
    assert plan.event is None


def test_a_running_job_keeps_it_pending_without_a_new_job() -> None:
    plan = plan_validation(mv(), job(None), None, NOW)
    assert not plan.create_job
    assert plan.status.phase == "Pending"


def test_a_complete_job_validates_with_the_digest() -> None:
    version = mv()
    plan = plan_validation(version, job("Complete"), None, NOW)
    assert plan.status.phase == "Validated"
    assert plan.status.verified_sha256 == version.spec.sha256
    assert conditions(plan.status) == {"Ready": "True", "Reconciling": "False", "Stalled": "False"}
    assert plan.event is not None
    assert plan.event[:2] == ("Normal", "Validated")


def test_a_failed_job_is_invalid_with_the_servers_reason() -> None:
    reason = "coalmine-serve: sha256 mismatch: expected 00, artifact has ff"
    plan = plan_validation(mv(), job("Failed", "BackoffLimitExceeded"), reason, NOW)
    assert plan.status.phase == "Invalid"
    assert plan.status.message == reason
    assert conditions(plan.status)["Stalled"] == "True"
    assert plan.event is not None
    assert plan.event[:2] == ("Warning", "Invalid")


def test_a_failed_job_without_a_message_names_the_job_condition() -> None:
    plan = plan_validation(mv(), job("Failed", "DeadlineExceeded"), None, NOW)
    assert plan.status.message is not None
    assert "DeadlineExceeded" in plan.status.message


def test_a_verdict_is_final_and_keeps_its_transition_times() -> None:
    first = plan_validation(mv(), job("Complete"), None, NOW)
    again = plan_validation(
        mv(first.status.to_json()), job("Complete"), None, NOW + timedelta(minutes=5)
    )
    assert again.status == first.status
    assert again.event is None
    assert not again.create_job


def test_a_recreated_model_version_gets_its_own_check_job() -> None:
    first = ModelVersion.model_validate(model_version())
    first.metadata.uid = "11111111-aaaa"
    again = first.model_copy(deep=True)
    again.metadata.uid = "22222222-bbbb"
    assert validation_job_name(first) != validation_job_name(again)
    job = build_validation_job(again)
    assert job["metadata"]["name"] == validation_job_name(again)
    assert len(job["metadata"]["name"]) <= 63


def test_the_check_loads_with_the_signature_the_pods_get() -> None:
    """A signature the model contradicts makes the version Invalid, not its pods crash."""
    container = build_validation_job(mv())["spec"]["template"]["spec"]["containers"][0]
    values = {e["name"]: e["value"] for e in container["env"]}
    signature = mv().spec.signature
    assert signature is not None
    names = [i["name"] for i in json.loads(values["COALMINE_SIGNATURE"])["inputs"]]
    assert names == [i.name for i in signature.inputs]
