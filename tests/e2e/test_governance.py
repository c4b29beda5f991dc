"""Approvals and commands in their author's own name (issue 19), on the real cluster.

The chart's governance objects (its ValidatingAdmissionPolicy, binding and ClusterRoles,
rendered by `helm template` for this test's namespace) guard a rollout that waits at an
approval gate. Users are client certificates of the local cluster's CA: a developer,
an approver (through the group ml-leads) and an on-call engineer. Each is refused what
their role does not allow, and the history names who approved and who commanded.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.cluster import Cluster, wait_for
from tests.support.helm import template
from tests.support.operator import OperatorProcess
from tests.support.rollout import coalmine, validated
from tests.support.users import mint_user

GOVERNANCE_KINDS = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
ROLES = ("developer", "approver", "operator-on-call")
STRATEGY = {
    "steps": [{"setWeight": 50}, {"pause": {}}],
    "approverGroups": ["ml-leads"],
    "progressDeadlineSeconds": 120,
    "scaleDownDelaySeconds": 0,
    "abortScaleDownDelaySeconds": 0,
}


@pytest.fixture
def governance(cluster: Cluster, namespace: str) -> Iterator[str]:
    """The chart's policy and roles, bound to `namespace` only; yields the fullname."""
    release = f"gov-{namespace}"
    fullname = f"{release}-coalmine"
    docs = [
        d
        for d in template({"watchNamespaces": [namespace]}, release=release)
        if d["kind"] in GOVERNANCE_KINDS
        or (d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith(ROLES))
    ]
    assert sorted(d["kind"] for d in docs) == [
        *["ClusterRole"] * 3,
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    cluster.apply(*docs)
    try:
        yield fullname
    finally:
        for d in docs:
            cluster.kubectl("delete", d["kind"], d["metadata"]["name"], "--ignore-not-found")


def bind(cluster: Cluster, namespace: str, role: str, *, user: str = "", group: str = "") -> None:
    subject = f"--user={user}" if user else f"--group={group}"
    name = f"{role.rsplit('-coalmine-', 1)[1]}-{user or group}"
    cluster.kubectl(
        "-n", namespace, "create", "rolebinding", name, f"--clusterrole={role}", subject
    )


def annotate(who: Cluster, namespace: str, ref: str, value: str, *, dry: bool = False) -> str:
    """`kubectl annotate` as `who`; the refusal's message, or "" when it was admitted."""
    args = ["-n", namespace, "annotate", "--overwrite", ref, value]
    proc = who.kubectl(*args, *(["--dry-run=server"] if dry else []), check=False)
    return "" if proc.returncode == 0 else proc.stderr


def policy_refusal(message: str) -> str:
    """`message` when the governance policy wrote it; any other error is raised."""
    if message and "ValidatingAdmissionPolicy" not in message:
        raise AssertionError(message)
    return message


def refused(run: Any) -> str:
    """The stderr of a `coalmine` CLI run that must fail."""
    with pytest.raises(subprocess.CalledProcessError) as failed:
        run()
    return str(failed.value.stderr)


def status(cluster: Cluster, namespace: str) -> dict[str, Any]:
    result: dict[str, Any] = cluster.get("modeldeployment", "iris", namespace).get("status") or {}
    return result


def md(version: str) -> dict[str, Any]:
    return {
        "apiVersion": "coalmine.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris"},
        "spec": {"modelVersion": version, "replicas": 1, "strategy": STRATEGY},
    }


def wait_status(cluster: Cluster, namespace: str, what: str, check: Any) -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        st = status(cluster, namespace)
        return st if check(st) else None

    found: dict[str, Any] = wait_for(what, seen, timeout=240, interval=1)
    return found


def test_approvals_and_commands_name_their_verified_authors(
    cluster: Cluster,
    namespace: str,
    models: dict[str, dict[str, Any]],
    operator: OperatorProcess,
    governance: str,
) -> None:
    dev = mint_user(cluster, "dev", "ml-devs")
    alice = mint_user(cluster, "alice", "ml-leads")
    carol = mint_user(cluster, "carol", "sre")
    bind(cluster, namespace, f"{governance}-developer", group="ml-devs")
    bind(cluster, namespace, f"{governance}-developer", group="ml-leads")
    bind(cluster, namespace, f"{governance}-approver", group="ml-leads")
    bind(cluster, namespace, f"{governance}-operator-on-call", user="carol")

    # The developer registers the versions (their role allows it) ...
    dev.apply(*(models[v] for v in ("iris-v1", "iris-v2", "iris-v3")), namespace=namespace)
    for v in ("iris-v1", "iris-v2", "iris-v3"):
        wait_for(f"{v} validated", lambda v=v: validated(cluster, v, namespace), timeout=180)
    # ... but cannot approve, neither as themselves nor in the approver's name. The policy
    # is enforced a moment after it is created: poll with a server dry-run.
    approve_as_dev = "coalmine.dev/approved-by=dev"
    own = wait_for(
        "the policy to refuse an approval by the developer",
        lambda: policy_refusal(
            annotate(dev, namespace, "modelversion/iris-v1", approve_as_dev, dry=True)
        ),
        timeout=60,
    )
    assert "dev may not approve" in own
    assert "approver" in own
    forged = annotate(dev, namespace, "modelversion/iris-v1", "coalmine.dev/approved-by=alice")
    assert 'you can approve only in your own name, "dev"' in forged
    # The approver cannot approve in someone else's name, nor state a group not theirs.
    assert "your own name" in annotate(
        alice, namespace, "modelversion/iris-v1", "coalmine.dev/approved-by=bob"
    )
    stated = annotate(alice, namespace, "modelversion/iris-v1", "coalmine.dev/approved-groups=sre")
    assert "only groups you are in" in stated
    out = coalmine("approve", "iris-v1", "-n", namespace, "--group", "ml-leads", cluster=alice)
    assert "approved by alice (groups ml-leads)" in out

    dev.apply(md("iris-v1"), namespace=namespace)
    cluster.wait_ready("modeldeployment/iris", namespace, timeout=240)

    # v2 waits at the gate, with no client traffic, until the approver approves it.
    dev.apply(md("iris-v2"), namespace=namespace)
    gated = wait_status(
        cluster,
        namespace,
        "v2 to wait for approval",
        lambda st: st.get("phase") == "Paused" and "approval" in (st.get("message") or ""),
    )
    assert gated["canary"]["weight"] == 0
    assert "from a member of ml-leads" in gated["message"]
    # Neither the developer nor anyone in their name may steer the rollout.
    denied = refused(lambda: coalmine("promote", "iris", "-n", namespace, cluster=dev))
    assert "dev may not issue the promote command" in denied
    token = "coalmine.dev/promote=x1 by=carol"
    assert '" by=dev", your own user name' in annotate(
        dev, namespace, "modeldeployment/iris", token
    )
    coalmine("approve", "iris-v2", "-n", namespace, "--group", "ml-leads", cluster=alice)
    wait_status(
        cluster,
        namespace,
        "v2 at 50% after the approval",
        lambda st: st.get("phase") == "Paused" and (st.get("canary") or {}).get("weight") == 50,
    )
    coalmine("promote", "iris", "-n", namespace, cluster=carol)
    wait_status(
        cluster,
        namespace,
        "v2 promoted by the on-call engineer",
        lambda st: st.get("phase") == "Healthy" and st["stable"]["modelVersion"] == "iris-v2",
    )

    # v3: approved, then aborted by the on-call engineer.
    coalmine("approve", "iris-v3", "-n", namespace, "--group", "ml-leads", cluster=alice)
    dev.apply(md("iris-v3"), namespace=namespace)
    wait_status(
        cluster,
        namespace,
        "v3 at 50%",
        lambda st: (
            (st.get("canary") or {}).get("modelVersion") == "iris-v3"
            and st["canary"]["weight"] == 50
            and st.get("phase") == "Paused"
        ),
    )
    coalmine("abort", "iris", "-n", namespace, cluster=carol)
    final = wait_status(
        cluster, namespace, "v3 aborted", lambda st: st.get("phase") == "RolledBack"
    )

    history = {h["modelVersion"]: h for h in final["history"]}
    approval = {"by": "alice", "groups": ["ml-leads"]}
    assert history["iris-v1"]["approval"] == approval
    assert history["iris-v2"]["outcome"] == "Promoted"
    assert history["iris-v2"]["approval"] == approval
    assert [(c["command"], c["by"]) for c in history["iris-v2"]["commands"]] == [
        ("promote", "carol")
    ]
    assert history["iris-v3"]["outcome"] == "Aborted"
    assert history["iris-v3"]["approval"] == approval
    assert [(c["command"], c["by"]) for c in history["iris-v3"]["commands"]] == [("abort", "carol")]
    assert "abort requested by carol" in history["iris-v3"]["reason"]
    printed = coalmine("history", "iris", "-n", namespace, cluster=carol)
    assert "approved by alice (groups ml-leads)" in printed
    assert "promote by carol" in printed
    assert "abort by carol" in printed
    events = cluster.kubectl("-n", namespace, "get", "events", "-o", "json").stdout
    assert "v2 approved by alice (groups ml-leads)" in events
    assert "to stable, approved by alice (groups ml-leads)" in events
