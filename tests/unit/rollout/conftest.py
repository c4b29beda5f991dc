"""Shared builders for the rollout tests."""

from __future__ import annotations

import pytest

from coalmine.api.modelversion import ModelVersion
from tests.unit.rollout.sim import model_version


@pytest.fixture
def versions() -> dict[str, ModelVersion]:
    return {n: model_version(n) for n in ("iris-v1", "iris-v2", "iris-v3")}
