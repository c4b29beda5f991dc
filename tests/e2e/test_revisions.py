"""Every change to what serves is a canary (issue 11), on the real cluster under load.

A resources change and a ModelVersion re-created under the same name with another artifact
each start a canary that stops at `pause: {}` while the stable pods keep their template and
digest; `coalmine promote` completes them. A memory limit the model cannot load in is rolled
back by the crash-loop rule. No client request may fail in any of them.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.support.cluster import Cluster, wait_for
from tests.support.rollout import (
    ROWS,
    Rollout,
    body,
    coalmine,
    report,
    rolled_back,
    strategy,
)

GATED = strategy([{"setWeight": 50}, {"pause": {}}])
LIMITS = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
# The server (numpy, scikit-learn) needs well over 100 MiB to start: at 40 MiB it is
# OOM-killed before it is ever ready.
TOO_SMALL = {"limits": {"memory": "40Mi"}}


def container(cluster: Cluster, namespace: str, variant: str) -> dict[str, Any]:
    dep = cluster.get("deployment", f"iris-{variant}", namespace)
    found: dict[str, Any] = dep["spec"]["template"]["spec"]["containers"][0]
    return found


def generation(cluster: Cluster, namespace: str, variant: str) -> int:
    return int(cluster.get("deployment", f"iris-{variant}", namespace)["metadata"]["generation"])


def env(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in c["env"]}


def condition(st: dict[str, Any], type_: str) -> tuple[str, str] | None:
    for c in st.get("conditions", []):
        if c["type"] == type_:
            return c["status"], c["reason"]
    return None


def promoted_revision(revision: int) -> Any:
    def check(st: dict[str, Any]) -> bool:
        return st.get("phase") == "Healthy" and (st.get("stable") or {}).get("revision") == revision

    return check


class AtPause:
    """At the first Paused status: record what ran, then `coalmine promote`."""

    def __init__(self, rollout: Rollout) -> None:
        self.rollout, self.seen = rollout, {}  # type: ignore[var-annotated]

    def __call__(self, st: dict[str, Any]) -> None:
        if st.get("phase") != "Paused" or self.seen:
            return
        r = self.rollout
        self.seen = {
            "status": st,
            "stable": container(r.cluster, r.namespace, "stable"),
            "canary": container(r.cluster, r.namespace, "canary"),
            "stable_generation": generation(r.cluster, r.namespace, "stable"),
        }
        coalmine("promote", r.name, "-n", r.namespace, cluster=r.cluster)


def test_a_resources_change_is_a_canary_that_stops_at_the_pause(rollout: Rollout) -> None:
    rollout.register("iris-v1")
    rollout.serve("iris-v1", GATED, ROWS)
    cluster, ns = rollout.cluster, rollout.namespace
    stable_before = container(cluster, ns, "stable")
    generation_before = generation(cluster, ns, "stable")
    rollout.spec = {"resources": LIMITS}
    at_pause = AtPause(rollout)
    out = rollout.change("iris-v1", GATED, promoted_revision(2), during=at_pause)
    report("resources change", out)
    seen = at_pause.seen
    assert seen, "the rollout never stopped at the pause"
    canary = seen["status"]["canary"]
    assert (canary["modelVersion"], canary["weight"], canary["changes"]) == (
        "iris-v1",
        50,
        ["resources"],
    )
    assert seen["stable_generation"] == generation_before, "stable template rewritten at once"
    assert seen["stable"]["resources"] == stable_before["resources"]
    assert seen["canary"]["resources"]["limits"] == {"memory": "1Gi"}
    assert container(cluster, ns, "stable")["resources"]["limits"] == {"memory": "1Gi"}
    status = out.md["status"]
    assert status["history"][-1]["changes"] == ["resources"]
    assert status["history"][-1]["outcome"] == "Promoted"
    history = coalmine("history", "iris", "-n", ns, cluster=cluster)
    assert "[resources]" in history, history
    assert out.load["failed"] == 0, out.load["errors"]


def test_a_model_version_recreated_with_another_artifact_is_a_canary(
    rollout: Rollout, models: dict[str, dict[str, Any]]
) -> None:
    rollout.register("iris-v1")
    rollout.serve("iris-v1", GATED, ROWS)
    cluster, ns = rollout.cluster, rollout.namespace
    old_sha, new_sha = models["iris-v1"]["spec"]["sha256"], models["iris-v2"]["spec"]["sha256"]
    generation_before = generation(cluster, ns, "stable")

    cluster.kubectl("-n", ns, "delete", "modelversion", "iris-v1", "--wait=true")
    wait_for(
        "ModelVersionAvailable=False (deleted)",
        lambda: (
            condition(rollout.status(), "ModelVersionAvailable") == ("False", "ModelVersionDeleted")
        ),
        timeout=60,
    )
    url = f"http://iris.{ns}.svc.cluster.local/v2/models/iris/infer"
    assert rollout.client.request(url, body(ROWS[0]))[0] == 200, "stable stopped serving"
    assert generation(cluster, ns, "stable") == generation_before

    mislabelled = copy.deepcopy(models["iris-v1"])
    mislabelled["spec"] |= {"uri": models["iris-v2"]["spec"]["uri"], "sha256": new_sha}
    cluster.apply(mislabelled, namespace=ns)
    at_pause = AtPause(rollout)
    out = rollout.change("iris-v1", GATED, promoted_revision(2), during=at_pause)
    report("model version re-created", out)
    seen = at_pause.seen
    assert seen, "the rollout never stopped at the pause"
    assert seen["status"]["canary"]["changes"] == ["artifact"]
    assert condition(seen["status"], "ModelVersionAvailable") == ("False", "ModelVersionReplaced")
    assert env(seen["stable"])["COALMINE_SHA256"] == old_sha, "stable switched digest at once"
    assert seen["stable_generation"] == generation_before
    assert env(seen["canary"])["COALMINE_SHA256"] == new_sha
    assert env(container(cluster, ns, "stable"))["COALMINE_SHA256"] == new_sha
    status = out.md["status"]
    assert condition(status, "ModelVersionAvailable") == ("True", "ModelVersionPresent")
    assert status["stable"]["pin"]["sha256"] == new_sha
    events = cluster.kubectl("-n", ns, "get", "events", "-o", "jsonpath={.items[*].reason}").stdout
    assert "ModelVersionDeleted" in events.split(), events
    assert out.load["failed"] == 0, out.load["errors"]


def test_a_memory_limit_the_model_cannot_load_in_is_rolled_back(rollout: Rollout) -> None:
    rollout.register("iris-v1")
    rollout.serve("iris-v1", GATED, ROWS)
    cluster, ns = rollout.cluster, rollout.namespace
    generation_before = generation(cluster, ns, "stable")
    rollout.spec = {"resources": TOO_SMALL}
    out = rollout.change("iris-v1", GATED, rolled_back)
    report("memory limit too small", out)
    status = out.md["status"]
    assert "crash-looping" in status["message"], status["message"]
    assert status["canary"]["changes"] == ["resources"]
    assert status["stable"]["revision"] == 1
    assert generation(cluster, ns, "stable") == generation_before
    assert "limits" not in container(cluster, ns, "stable")["resources"]
    assert out.load["failed"] == 0, out.load["errors"]
