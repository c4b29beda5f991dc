"""The watch cache and the rule that skips an apply which would change nothing."""

from __future__ import annotations

from typing import Any

from coalmine.kube.applied import APPLIED_ANNOTATION, holds, stamped, unchanged
from coalmine.kube.cache import Cache


def service(rv: str = "10", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "iris",
            "namespace": "ml",
            "resourceVersion": rv,
            "labels": {"app": "iris"},
            "managedFields": [{"manager": "coalmine"}],
        },
        "spec": {"selector": {"app": "iris"}, **spec},
    }


def test_the_cache_answers_only_once_ready_and_only_for_its_kinds() -> None:
    cache = Cache(["Service"])
    cache.store("Service", service())
    assert not cache.covers("Service")
    cache.ready = True
    assert cache.covers("Service")
    assert not cache.covers("Deployment")
    found = cache.get("Service", "ml", "iris")
    assert found is not None
    assert "managedFields" not in found["metadata"]
    assert cache.get("Service", "ml", "other") is None


def test_an_older_answer_never_replaces_a_newer_object() -> None:
    cache = Cache(["Service"])
    cache.store("Service", service("12", type="ClusterIP"))
    cache.store("Service", service("11"))  # a watch event older than our write's answer
    found = cache.get("Service", "ml", "iris")
    assert found is not None
    assert found["metadata"]["resourceVersion"] == "12"
    cache.store("Service", service("13"))
    found = cache.get("Service", "ml", "iris")
    assert found is not None
    assert found["metadata"]["resourceVersion"] == "13"


def test_lists_filter_by_namespace_and_labels_and_forget_drops() -> None:
    cache = Cache(["Service"])
    cache.store("Service", service())
    other = service()
    other["metadata"] = {**other["metadata"], "namespace": "ops", "labels": {"app": "x"}}
    cache.store("Service", other)
    assert [s["metadata"]["namespace"] for s in cache.list("Service", "ml")] == ["ml"]
    assert len(cache.list("Service", None)) == 2
    assert cache.list("Service", None, {"app": "x"})[0]["metadata"]["namespace"] == "ops"
    cache.forget("Service", "ml", "iris")
    assert cache.get("Service", "ml", "iris") is None
    assert len(cache.list("Service", None)) == 1


def test_a_copy_read_from_the_cache_cannot_change_it() -> None:
    cache = Cache(["Service"])
    cache.store("Service", service())
    found = cache.get("Service", "ml", "iris")
    assert found is not None
    found["spec"]["selector"]["app"] = "changed"
    again = cache.get("Service", "ml", "iris")
    assert again is not None
    assert again["spec"]["selector"]["app"] == "iris"


def desired(**spec: Any) -> dict[str, Any]:
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "iris", "namespace": "ml", "labels": {"app": "iris"}},
        "spec": {"selector": {"app": "iris"}, **spec},
    }
    return stamped(body)


def as_served(manifest: dict[str, Any], **defaults: Any) -> dict[str, Any]:
    """What the API server would hold after the apply: our values and its defaults."""
    return {**manifest, "spec": {**manifest["spec"], **defaults}, "status": {}}


def test_an_apply_the_held_object_already_has_is_unchanged() -> None:
    want = desired(ports=[{"port": 80, "targetPort": "http"}])
    held = as_served(want, clusterIP="10.96.0.7", type="ClusterIP")
    held["spec"]["ports"] = [{"port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert unchanged(held, want)


def test_a_value_someone_else_changed_makes_it_changed() -> None:
    want = desired(ports=[{"port": 80}])
    held = as_served(want)
    held["spec"]["ports"] = [{"port": 81}]
    assert not unchanged(held, want)


def test_a_field_no_longer_set_changes_the_digest() -> None:
    """The held object still has every value of the new manifest, but the field we drop
    must be applied away: only the digest tells."""
    before = desired(ports=[{"port": 80}], sessionAffinity="ClientIP")
    after = desired(ports=[{"port": 80}])
    held = as_served(before)
    assert holds(held["spec"], after["spec"])
    assert not unchanged(held, after)
    assert (
        before["metadata"]["annotations"][APPLIED_ANNOTATION]
        != after["metadata"]["annotations"][APPLIED_ANNOTATION]
    )


def test_an_object_never_stamped_is_applied() -> None:
    want = desired()
    held = as_served(want)
    held["metadata"] = {**held["metadata"], "annotations": {}}
    assert not unchanged(held, want)


def test_holds_compares_lists_item_by_item_and_types_strictly() -> None:
    assert holds({"a": [1, 2]}, {"a": [1, 2]})
    assert not holds({"a": [1, 2, 3]}, {"a": [1, 2]})
    assert not holds({"a": "1"}, {"a": 1})
    assert not holds({"a": 1}, {"a": True})
    assert holds({}, {"a": {}, "b": [], "c": None})
    assert not holds({}, {"a": 0})


def test_a_remembered_kind_is_kept_for_applies_but_never_read_from_the_cache() -> None:
    cache = Cache(["Service"], remembered=["ConfigMap"])
    cache.ready = True
    assert cache.keeps("ConfigMap")
    assert not cache.covers("ConfigMap")
    assert not cache.keeps("HTTPRoute")
