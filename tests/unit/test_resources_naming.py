"""Names, labels and owner references of owned objects."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coalmine.api import ModelDeployment
from coalmine.resources.naming import (
    MAX_NAME,
    child_name,
    common_labels,
    owner_reference,
    selector_labels,
)
from tests.integration.test_admission import model_deployment

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MD_NAMES = st.from_regex(r"[a-z]([-a-z0-9]{0,250}[a-z0-9])?", fullmatch=True)


def md(name: str = "iris", uid: str | None = "uid-1") -> ModelDeployment:
    doc = model_deployment(name)
    doc["metadata"] |= {"namespace": "ml", "uid": uid}
    return ModelDeployment.model_validate(doc)


def test_short_names_are_kept() -> None:
    assert child_name("iris", "canary") == "iris-canary"
    assert child_name("iris") == "iris"


@given(MD_NAMES, st.sampled_from(["", "stable", "canary"]))
def test_names_fit_in_63_and_stay_dns_labels(parent: str, suffix: str) -> None:
    name = child_name(parent, suffix)
    assert len(name) <= MAX_NAME
    assert DNS_1035.match(name), name
    assert name.endswith(suffix)
    assert child_name(parent, suffix) == name  # deterministic


def test_long_names_differ_by_hash() -> None:
    a, b = "m" * 70 + "a", "m" * 70 + "b"
    assert child_name(a, "stable") != child_name(b, "stable")
    assert len(child_name(a, "stable")) == MAX_NAME


def test_labels_of_design_section_4() -> None:
    labels = common_labels(md(), "canary", "v2")
    assert labels == {
        "app.kubernetes.io/name": "iris",
        "app.kubernetes.io/managed-by": "coalmine",
        "coalmine.dev/deployment": "iris",
        "coalmine.dev/version": "v2",
        "coalmine.dev/variant": "canary",
    }
    assert selector_labels(md()) == {"coalmine.dev/deployment": "iris"}
    assert selector_labels(md(), "stable") == {
        "coalmine.dev/deployment": "iris",
        "coalmine.dev/variant": "stable",
    }


def test_owner_reference_makes_the_deployment_controller() -> None:
    assert owner_reference(md()) == {
        "apiVersion": "coalmine.dev/v1alpha1",
        "kind": "ModelDeployment",
        "name": "iris",
        "uid": "uid-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_owner_reference_needs_a_uid() -> None:
    with pytest.raises(ValueError, match="uid"):
        owner_reference(md(uid=None))
