"""Drive a rollout under client load and observe it: shared by the rollout e2e tests, the
benchmarks and the demo (hack/demo/demo.py), which follows its rollouts with `progress_line`
and `rollout_outcome`."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.support import kstatus
from tests.support.client import InClusterClient
from tests.support.cluster import REPO, Cluster, PermanentError, wait_for

INTERVAL = "5s"
ROWS = [
    [5.1, 3.5, 1.4, 0.2],
    [4.9, 3.0, 1.4, 0.2],
    [6.4, 3.2, 4.5, 1.5],
    [5.5, 2.3, 4.0, 1.3],
    [6.3, 3.3, 6.0, 2.5],
    [5.8, 2.7, 5.1, 1.9],
    [5.7, 2.8, 4.1, 1.3],
    [6.7, 3.1, 5.6, 2.4],
]
BAD_ROW = [5.9, 3.0, 5.1, 4.4]  # a petal width iris-errors never saw: it raises
# Traffic as it often is, skewed to one class. The mislabelled iris-v3 renames
# every class; on perfectly balanced traffic that would leave the distribution
# of predictions unchanged, on skewed traffic it moves it a lot.
SKEWED_ROWS = [ROWS[0], ROWS[1], [5.0, 3.4, 1.5, 0.2], [4.6, 3.1, 1.5, 0.2], ROWS[2], ROWS[4]]


def metric(name: str, builtin: str, maximum: float, samples: int = 20) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "builtin",
        "builtin": {"metric": builtin},
        "threshold": {"max": maximum},
        "minSampleCount": samples,
    }


METRICS = [
    metric("error-rate", "errorRate", 0.05),
    # Measured here: stable (logistic regression) p99 2-5 ms, iris-slow 14-35 ms.
    metric("latency-p99", "latencyP99", 10),
    metric("prediction-shift", "predictionShift", 0.2),
]


def strategy(steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    analysis = {"analysis": {"interval": INTERVAL, "count": 2, "metrics": METRICS}}
    return {
        "steps": steps
        if steps is not None
        else [{"setWeight": 25}, analysis, {"setWeight": 50}, analysis],
        "progressDeadlineSeconds": 90,
        "scaleDownDelaySeconds": 5,
        "abortScaleDownDelaySeconds": 0,
        "maxCanaryRestarts": 2,
    }


def body(row: list[float]) -> dict[str, Any]:
    return {
        "inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": "FP64", "data": row}]
    }


@dataclass
class Outcome:
    md: dict[str, Any]
    load: dict[str, Any]
    ended: float  # load-relative second at which the rollout ended


class Rollout:
    """Serve v1 under load, change the version, follow the rollout to its end."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        client: InClusterClient,
        models: dict[str, dict[str, Any]],
    ) -> None:
        self.cluster, self.namespace, self.client, self.models = cluster, namespace, client, models
        self.name = "iris"
        self.spec: dict[str, Any] = {}
        """More of the ModelDeployment's spec (resources, serving ...), applied with it; a
        None leaves that field out (e.g. replicas under autoscaling)."""

    def md(self, version: str, strat: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "coalmine.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": self.name},
            "spec": {
                k: v
                for k, v in {
                    "modelVersion": version, "replicas": 2, "strategy": strat, **self.spec
                }.items()
                if v is not None
            },
        }  # fmt: skip

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = (
            self.cluster.get("modeldeployment", self.name, self.namespace).get("status") or {}
        )
        return result

    def register(self, *versions: str) -> None:
        self.cluster.apply(*(self.models[v] for v in versions), namespace=self.namespace)
        for v in versions:
            wait_for(
                f"{v} to be validated",
                lambda v=v: validated(self.cluster, v, self.namespace),
                timeout=180,
            )

    def serve(
        self,
        version: str,
        strat: dict[str, Any],
        rows: list[list[float]],
        max_requests: int = 100_000,
        truths: list[Any] | None = None,
    ) -> None:
        self.cluster.apply(self.md(version, strat), namespace=self.namespace)
        self.cluster.wait_ready(f"modeldeployment/{self.name}", self.namespace)
        # kube-proxy programs a new Service a moment after its pods are Ready.
        wait_for(
            "the Service to answer",
            lambda: self.client.request(self.url("infer"), body(rows[0]))[0] == 200,
        )
        self.load(rows, max_requests, truths)

    def url(self, endpoint: str) -> str:
        """The client Service's URL of the model's `endpoint` (infer, feedback)."""
        host = f"{self.name}.{self.namespace}.svc.cluster.local"
        return f"http://{host}/v2/models/{self.name}/{endpoint}"

    def load(
        self, rows: list[list[float]], max_requests: int = 100_000, truths: list[Any] | None = None
    ) -> None:
        """(Re)start the client's load on `rows`; with `truths` (one per row) every answer's id
        is posted back with its row's truth, as a labelling application would."""
        if self.client.load_status().get("running"):
            self.client.stop_load()
        self.client.start_load(
            self.url("infer"),
            [body(r) for r in rows],
            concurrency=4,
            max_requests=max_requests,
            max_seconds=480,
            truths=truths,
            feedback_url=self.url("feedback") if truths is not None else "",
        )
        print(f"\nload started at {time.strftime('%H:%M:%S')}")
        wait_for("the load to get answers", lambda: self.client.load_status()["ok"] > 20)

    def change(
        self,
        version: str,
        strat: dict[str, Any],
        done: Callable[[dict[str, Any]], bool],
        during: Callable[[dict[str, Any]], None] = lambda _: None,
        timeout: float = 360,
    ) -> Outcome:
        """Apply the new version and poll until `done(status)`; keep load 10 s more."""
        self.cluster.apply(self.md(version, strat), namespace=self.namespace)
        target_gen = self.cluster.get("modeldeployment", self.name, self.namespace)["metadata"][
            "generation"
        ]

        def finished() -> dict[str, Any] | None:
            st = self.status()
            during(st)
            if st.get("observedGeneration") != target_gen:
                return None
            if done(st):
                return st
            if rolled_back(st):  # a rollback is final: what `done` waits for cannot come
                raise PermanentError(f"the rollout to {version} rolled back: {st.get('message')}")
            return None

        wait_for(f"the rollout to {version} to end", finished, timeout=timeout, interval=1)
        ended = self.load_second()
        wait_for("10 s more of load", lambda: self.load_second() >= ended + 10, timeout=60)
        load = self.client.stop_load()
        md = self.cluster.get("modeldeployment", self.name, self.namespace)
        if load["failed"]:  # the story next to the failures, for whoever reads the log
            print(
                self.cluster.kubectl(
                    "-n",
                    self.namespace,
                    "get",
                    "events",
                    "--sort-by=.lastTimestamp",
                    "-o",
                    "custom-columns=T:.lastTimestamp,REASON:.reason,OBJ:.involvedObject.name,"
                    "MSG:.message",
                ).stdout
            )
        return Outcome(md, load, ended)

    def load_second(self) -> float:
        started = self.client.load_status()["started"]
        return time.time() - datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()


def validated(cluster: Cluster, name: str, namespace: str) -> bool:
    """The ModelVersion is Validated; `PermanentError` with the reason when it is Invalid."""
    status = cluster.get("modelversion", name, namespace).get("status") or {}
    if status.get("phase") == "Invalid":
        raise PermanentError(f"ModelVersion {name} is Invalid: {status.get('message')}")
    return status.get("phase") == "Validated"


def current(cluster: Cluster, kind: str, name: str, namespace: str) -> bool:
    """kstatus says Current (reconciled and Ready); `PermanentError` when it says Failed
    (Stalled: the operator cannot make progress without a change)."""
    body = cluster.get(kind, name, namespace)
    result = kstatus.compute(body)
    if result.status is kstatus.Status.FAILED:
        raise PermanentError(f"{kind} {name} is stalled: {result.message}")
    conditions = (body.get("status") or {}).get("conditions") or []
    # kstatus calls an object without conditions Current: not yet seen by the operator here.
    seen = any(c.get("type") == "Ready" for c in conditions)
    return seen and result.status is kstatus.Status.CURRENT


def rollout_outcome(st: dict[str, Any], version: str, generation: Any) -> str | None:
    """Promoted or RolledBack once the rollout to ModelVersion `version` is over."""
    if st.get("observedGeneration") != generation:
        return None
    if promoted_to(version)(st):
        return "Promoted"
    if rolled_back(st):
        return "RolledBack"
    return None


def progress_line(
    st: dict[str, Any], load: dict[str, Any], steps: int = 0
) -> tuple[str, tuple[Any, ...]]:
    """One line about a rollout, and the key that says whether anything changed."""
    canary = st.get("canary") or {}
    stable = st.get("stable") or {}
    analysis = st.get("lastAnalysis") or {}
    step = st.get("currentStepIndex")
    total = f"/{steps}" if steps else ""
    where = f"step {min(step + 1, steps or step + 1)}{total}" if isinstance(step, int) else ""
    if isinstance(step, int) and steps and step >= steps:
        where = "promoting"
    weight = canary.get("weight", 0) if canary else 0
    verdict = ""
    if analysis and analysis.get("revision") == canary.get("revision"):
        figures = ", ".join(
            f"{m['name']} {m['value']:.3g}" for m in analysis.get("metrics", [])
            if m.get("value") is not None
        )  # fmt: skip
        verdict = f" | analysis: {analysis.get('outcome')} ({figures})"
    key = (
        st.get("phase"), stable.get("version"), canary.get("version"), weight, step,
        analysis.get("time"),
    )  # fmt: skip
    versions = f"stable {stable.get('version', '-')}"
    if canary:
        versions += f", canary {canary.get('version')} at {weight}%"
    line = (
        f"{st.get('phase', 'Pending'):<11} {versions:<30} {where:<8}{verdict}"
        f" | requests ok {load.get('ok', 0)}, failed {load.get('failed', 0)}"
    )
    return line, key


def rolled_back(st: dict[str, Any]) -> bool:
    return st.get("phase") == "RolledBack"


def promoted_to(version: str) -> Callable[[dict[str, Any]], bool]:
    def check(st: dict[str, Any]) -> bool:
        return (
            st.get("phase") == "Healthy" and (st.get("stable") or {}).get("modelVersion") == version
        )

    return check


def rollout_stage(st: dict[str, Any]) -> str | None:
    """Where a running rollout is, in the stages a crash test kills the operator at."""
    canary = st.get("canary") or {}
    if st.get("phase") != "Progressing" or not canary:
        return None
    if st.get("analysisRun"):
        return "mid-analysis"
    if canary.get("weight", 0) >= 100:
        return "promoting"
    if canary.get("weight", 0) > 0:
        return "at-weight"
    return "canary-starting"


def failures_after(load: dict[str, Any], second: float) -> int:
    return sum(s["failed"] for i, s in enumerate(load["seconds"]) if i > second)


def first_failure(load: dict[str, Any]) -> int | None:
    return next((i for i, s in enumerate(load["seconds"]) if s["failed"]), None)


def report(name: str, out: Outcome) -> None:
    onset = first_failure(out.load)
    took = f"{out.ended - onset:.0f}s from first failed request" if onset is not None else "-"
    print(
        f"\n{name}: {out.md['status']['phase']} ({out.md['status'].get('message', '')}); "
        f"requests ok {out.load['ok']}, failed {out.load['failed']}, "
        f"versions {out.load['versions']}; rollback {took}"
    )
    for i, sec in enumerate(out.load["seconds"]):
        if sec["failed"]:
            print(f"  second {i}: {sec}")


def coalmine(*args: str, cluster: Cluster) -> str:
    """Run the `coalmine` CLI against `cluster`; its standard output."""
    proc = subprocess.run(
        [sys.executable, "-m", "coalmine.cli.main", *args],
        cwd=REPO,
        env={"KUBECONFIG": str(cluster.kubeconfig), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout
