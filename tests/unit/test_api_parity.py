"""Python models and the CRD agree: what the API server rejects, pydantic rejects too.

The cases are the admission table of the integration tests, so one list of
mistakes is checked offline here and against a real API server there.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from coalmine.api import ModelDeployment, ModelVersion, RolloutStrategy
from tests.integration.test_admission import (
    INVALID,
    SERVER_ONLY,
    model_deployment,
    model_version,
    rollout_strategy,
)

MODELS: dict[str, type[BaseModel]] = {
    "ModelVersion": ModelVersion,
    "RolloutStrategy": RolloutStrategy,
    "ModelDeployment": ModelDeployment,
}


@pytest.mark.parametrize(
    ("case", "doc"),
    [(case, doc) for case, doc, _ in INVALID if case not in SERVER_ONLY],
    ids=[case for case, _, _ in INVALID if case not in SERVER_ONLY],
)
def test_python_rejects_what_the_server_rejects(case: str, doc: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        MODELS[doc["kind"]].model_validate(doc)


@pytest.mark.parametrize("doc", [model_version(), rollout_strategy(), model_deployment()])
def test_python_accepts_the_valid_examples(doc: dict[str, Any]) -> None:
    spec = MODELS[doc["kind"]].model_validate(doc).model_dump(by_alias=True, exclude_none=True)
    assert doc["spec"].keys() <= spec["spec"].keys()


def test_server_only_cases_exist() -> None:
    assert {case for case, _, _ in INVALID} >= SERVER_ONLY
