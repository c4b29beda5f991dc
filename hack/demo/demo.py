"""`make demo`: a model shipped safely and a bad one caught, on a local cluster.

    .venv/bin/python hack/demo/demo.py up      # the whole story (make demo)
    .venv/bin/python hack/demo/demo.py down    # remove what it created (make demo-down)

Acts: cluster -> images -> Coalmine by Helm -> models -> serve v1 under client traffic ->
kubectl apply v2 (promoted) -> kubectl apply v3 (rolled back by prediction shift) ->
summary and the HTML/PNG report of the v3 rollout.

Settings (environment): DEMO_PACE=human|fast (human: short pauses to read, the default),
DEMO_NAMESPACE (coalmine-demo), DEMO_SYSTEM_NAMESPACE (coalmine-system), DEMO_RELEASE
(coalmine), DEMO_OUT (_out/demo), KUBECONFIG (a cluster to use instead of the local one).
`up` writes DEMO_OUT/result.json; tests/e2e/test_demo.py runs `make demo` and reads it.

This file is the story only: the cluster handle, kubectl, waits, the in-cluster client,
rollout polling and the streamed build steps are the dev-support package tests/support,
shared with the tests and the benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # tests.support and examples, from a plain `python demo.py`

from examples import model_store  # noqa: E402
from tests.support.client import InClusterClient  # noqa: E402
from tests.support.cluster import (  # noqa: E402
    Cluster,
    PermanentError,
    ensure_namespace,
    local_kubeconfig,
    wait_for,
)
from tests.support.helm import helm_bin  # noqa: E402
from tests.support.images import build  # noqa: E402
from tests.support.models import provide_models, remove_models, train  # noqa: E402
from tests.support.rollout import body as infer_body  # noqa: E402
from tests.support.rollout import (  # noqa: E402
    current,
    progress_line,
    rollout_outcome,
    validated,
)
from tests.support.steps import StepFailed, run_step  # noqa: E402

EXAMPLES = REPO / "examples"
MANIFESTS = EXAMPLES / "demo"
IMAGES = {
    "image-serving": "coalmine-serving.tar",
    "image-operator": "coalmine-operator.tar",
    "image-test-http": "coalmine-test-http.tar",
}
VERSIONS = ("iris-v1", "iris-v2", "iris-v3")
NAME = "iris"
# The client's traffic: like most real traffic, not balanced across classes (5 of 8 rows
# are setosa). Prediction shift compares the share of each predicted class between canary
# and stable, so a model that confuses the classes stands out on such traffic.
ROWS = [
    [5.1, 3.5, 1.4, 0.2],
    [4.9, 3.0, 1.4, 0.2],
    [4.7, 3.2, 1.3, 0.2],
    [5.0, 3.6, 1.4, 0.2],
    [5.4, 3.9, 1.7, 0.4],
    [6.4, 3.2, 4.5, 1.5],
    [5.5, 2.3, 4.0, 1.3],
    [6.3, 3.3, 6.0, 2.5],
]
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}
LOAD_CONCURRENCY = 2
LOAD_MAX_SECONDS = 1200


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why."""


# What stops the demo, with its reason: a failed build step (its log's tail), a wait that
# cannot end (PermanentError: e.g. an Invalid ModelVersion, at once) or that ran out
# (WaitTimeout, an AssertionError), kubectl refusing something (RuntimeError).
FAILURES = (
    DemoError, StepFailed, PermanentError, RuntimeError, AssertionError,
    subprocess.TimeoutExpired, OSError,
)  # fmt: skip


@dataclass
class Config:
    namespace: str = "coalmine-demo"
    system_namespace: str = "coalmine-system"
    release: str = "coalmine"
    out: Path = REPO / "_out" / "demo"
    pace: str = "human"
    kubeconfig: Path | None = None
    """A cluster to use; None starts (or reuses) the local cluster."""
    build_images: bool = True
    say: Callable[[str], None] = print

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ
        return cls(
            namespace=env.get("DEMO_NAMESPACE", "coalmine-demo"),
            system_namespace=env.get("DEMO_SYSTEM_NAMESPACE", "coalmine-system"),
            release=env.get("DEMO_RELEASE", "coalmine"),
            out=Path(env.get("DEMO_OUT", str(REPO / "_out" / "demo"))),
            pace=env.get("DEMO_PACE", "human"),
            kubeconfig=Path(env["KUBECONFIG"]) if env.get("KUBECONFIG") else None,
        )

    @property
    def state_file(self) -> Path:
        return self.out / f"state-{self.namespace}.json"


@dataclass
class State:
    """What this demo created, so `down` removes exactly that."""

    kubeconfig: str
    cluster_started: bool = False
    crds_installed: bool = False
    namespaces: list[str] = field(default_factory=list)
    release: str = ""
    release_namespace: str = ""
    model_store: str = ""


@dataclass
class RolloutResult:
    model_version: str
    version: str
    from_version: str
    outcome: str  # Promoted, RolledBack, ...
    reason: str
    seconds: float
    """From `kubectl apply` to the end (promoted, or 100% back on stable)."""
    first_failed_to_rollback: float | None
    requests_ok: int
    requests_failed: int
    served_by: dict[str, int]


@dataclass
class Result:
    rollouts: list[RolloutResult]
    load: dict[str, Any]
    report_html: Path
    report_png: Path | None
    elapsed: float


class Demo:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.t0 = time.monotonic()
        self.cluster: Cluster | None = None
        self.state: State | None = None

    # --- narration -------------------------------------------------------------------
    def elapsed(self) -> str:
        return f"[{time.monotonic() - self.t0:6.1f}s]"

    def say(self, text: str) -> None:
        self.cfg.say(f"{self.elapsed()} {text}")

    def act(self, title: str, story: str = "") -> None:
        self.cfg.say("")
        self.say(f"== {title}")
        if story:
            self.cfg.say(f"           {story}")
        if self.cfg.pace == "human":
            time.sleep(3)

    def save(self) -> None:
        assert self.state is not None
        self.cfg.out.mkdir(parents=True, exist_ok=True)
        self.cfg.state_file.write_text(json.dumps(asdict(self.state), indent=2))

    def step(self, what: str, cmd: Sequence[str], timeout: float) -> str:
        """A build step: its progress lines shown as they come, its output in a log."""
        log = self.cfg.out / "logs" / (what.replace(" ", "-") + ".log")
        return run_step(what, cmd, log=log, say=self.say, timeout=timeout)

    def kube(self) -> Cluster:
        assert self.cluster is not None
        return self.cluster

    # --- acts ------------------------------------------------------------------------
    def start_cluster(self) -> Cluster:
        cfg = self.cfg
        started = False
        if cfg.kubeconfig is not None:
            self.say(f"using the cluster KUBECONFIG names: {cfg.kubeconfig}")
            cluster = Cluster.at(cfg.kubeconfig)
        else:
            cluster = Cluster.at(local_kubeconfig())
            if cluster.kubeconfig.exists() and cluster.ready():
                self.say(f"the local cluster is already running ({cluster.kubeconfig})")
            else:
                self.say("starting the local cluster: make cluster-up (first time: ~10 min)")
                self.step("cluster up", ["make", "-s", "cluster-up"], timeout=3600)
                started = True
            cluster = Cluster.at(local_kubeconfig())  # kubectl is there now
        cluster.kubectl("get", "--raw", "/readyz")
        self.cluster = cluster
        previous = self._previous_state()
        self.state = State(
            kubeconfig=str(cluster.kubeconfig),
            cluster_started=started or (previous is not None and previous.cluster_started),
        )
        if previous is not None:  # a re-run keeps what the first run created
            self.state.crds_installed = previous.crds_installed
        self.save()
        return cluster

    def _previous_state(self) -> State | None:
        try:
            return State(**json.loads(self.cfg.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def images(self) -> None:
        if not self.cfg.build_images:
            self.say("images: using those already in the cluster")
            return
        cluster = self.kube()
        for target, archive in IMAGES.items():
            self.say(f"make {target} (cached when nothing changed)")
            path = build(target, archive, say=self.say)
            if cluster.kind == "local":
                cluster.load_image(path, say=self.say)
            else:
                self.say(f"  not the local cluster: make {path.name} available to its nodes")

    def install(self) -> None:
        kube, state, cfg = self.kube(), self.state, self.cfg
        assert state is not None
        crds = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds").glob("*.yaml"))]
        names = [c["metadata"]["name"] for c in crds]
        existing = [n for n in names if kube.find("crd", n) is not None]
        if not existing:
            state.crds_installed = True
        self.save()
        self.say(f"CRDs: applying crds/ ({len(names)}; {len(existing)} already present)")
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                     *[f"crd/{n}" for n in names])  # fmt: skip
        for ns in (cfg.system_namespace, cfg.namespace):
            ensure_namespace(kube, ns, RESTRICTED.items())
            if ns not in state.namespaces:
                state.namespaces.append(ns)
        state.release, state.release_namespace = cfg.release, cfg.system_namespace
        self.save()
        helm = helm_bin(self.say)
        values = cfg.out / f"values-{cfg.namespace}.yaml"
        values.write_text(
            yaml.safe_dump({"watchNamespaces": [cfg.namespace], "crds": {"install": False}})
        )
        self.say(
            f"helm upgrade --install {cfg.release} charts/coalmine -n {cfg.system_namespace}"
            f" (watching only {cfg.namespace})"
        )
        self.step(
            "helm install",
            [helm, "upgrade", "--install", cfg.release, str(REPO / "charts" / "coalmine"),
             "--namespace", cfg.system_namespace, "--kubeconfig", str(kube.kubeconfig),
             "--values", str(values), "--wait", "--timeout", "5m"],
            timeout=400,
        )  # fmt: skip
        self.say("the operator is Ready")

    def models(self) -> dict[str, dict[str, Any]]:
        kube, cfg = self.kube(), self.cfg
        assert self.state is not None
        trained = cfg.out / "models"
        if not (trained / "modelversions.yaml").exists():
            self.say("training iris-v1 (fair), iris-v2 (better), iris-v3 (mislabelled) ...")
            train(trained)
        else:
            self.say(f"models already trained in {trained}")
        self.state.model_store = cfg.namespace
        self.save()
        docs = provide_models(kube, cfg.namespace, trained)
        self.say(f"model store: PV {model_store.pv_name(cfg.namespace)} + PVC coalmine-models")
        kube.apply(*(docs[v] for v in VERSIONS), namespace=cfg.namespace, force=True)
        for v in VERSIONS:
            # An Invalid version cannot heal: validated() raises, the demo stops with why.
            wait_for(
                f"ModelVersion {v} to be Validated (digest and a test load)",
                lambda v=v: validated(kube, v, cfg.namespace),  # type: ignore[misc]
                timeout=240,
                interval=1,
            )
            self.say(f"ModelVersion {v}: Validated ({docs[v]['spec'].get('version')})")
        return docs

    def serve(self) -> InClusterClient:
        kube, ns = self.kube(), self.cfg.namespace
        kube.apply_file(MANIFESTS / "rolloutstrategy.yaml", ns, force=True)
        kube.apply_file(MANIFESTS / "modeldeployment-v1.yaml", ns, force=True)
        self.say("kubectl apply -f examples/demo/modeldeployment-v1.yaml")
        wait_for(
            f"ModelDeployment {NAME} to be Ready",
            lambda: current(kube, "modeldeployment", NAME, ns),
            timeout=240,
            interval=1,
        )
        self.say("iris serves v1")
        kube.apply_file(MANIFESTS / "client.yaml", ns, force=True)
        client = InClusterClient(kube, ns, name="client")
        url = self.url()
        wait_for(
            "the iris Service to answer the client",
            lambda: client.request(url, infer_body(ROWS[0]))[0] == 200,
            timeout=90,
        )
        client.start_load(
            url,
            [infer_body(r) for r in ROWS],
            concurrency=LOAD_CONCURRENCY,
            max_requests=2_000_000,
            max_seconds=LOAD_MAX_SECONDS,
        )
        wait_for("the client's first answers", lambda: client.load_status()["ok"] >= 20, 60)
        self.say(
            f"client pod {client.ip}: {LOAD_CONCURRENCY} concurrent requests to {url}"
            f" (at most {LOAD_MAX_SECONDS}s)"
        )
        return client

    def url(self) -> str:
        ns = self.cfg.namespace
        return f"http://{NAME}.{ns}.svc.cluster.local/v2/models/{NAME}/infer"

    def status(self) -> dict[str, Any]:
        return self.kube().find("modeldeployment", NAME, self.cfg.namespace) or {}

    def roll(self, version: str, client: InClusterClient, timeout: float = 420) -> RolloutResult:
        """kubectl apply the manifest naming `version`; follow the rollout to its end."""
        kube, ns = self.kube(), self.cfg.namespace
        before = self.status()
        from_version = ((before.get("status") or {}).get("stable") or {}).get("version", "?")
        manifest = MANIFESTS / f"modeldeployment-{version.removeprefix('iris-')}.yaml"
        load_before = client.load_status()
        started = time.monotonic()
        kube.apply_file(manifest, ns, force=True)
        self.say(f"kubectl apply -f {manifest.relative_to(REPO)}")
        generation = (self.status().get("metadata") or {}).get("generation")
        strategy = yaml.safe_load((MANIFESTS / "rolloutstrategy.yaml").read_text())
        steps = len(strategy["spec"]["steps"])
        seen: list[tuple[Any, ...]] = []
        first_failed: list[float] = []

        def ended() -> tuple[str, dict[str, Any]] | None:
            st = self.status().get("status") or {}
            line, key = progress_line(st, client.load_status(), steps)
            if not seen or key != seen[-1]:
                seen.append(key)
                self.say(line)
            if (st.get("lastAnalysis") or {}).get("outcome") == "Failed" and not first_failed:
                first_failed.append(time.monotonic())
            outcome = rollout_outcome(st, version, generation)
            return (outcome, st) if outcome else None

        outcome, st = wait_for(f"the rollout to {version} to end", ended, timeout, interval=1)
        seconds = time.monotonic() - started
        history = [h for h in st.get("history", []) if h.get("modelVersion") == version]
        reason = (history[-1].get("reason") if history else None) or st.get("message") or ""
        load_after = client.load_status()
        served = {
            k: v - (load_before.get("versions") or {}).get(k, 0)
            for k, v in (load_after.get("versions") or {}).items()
        }
        return RolloutResult(
            model_version=version,
            version=version.removeprefix("iris-"),
            from_version=from_version,
            outcome=outcome,
            reason=reason,
            seconds=seconds,
            first_failed_to_rollback=(
                None if not first_failed or outcome == "Promoted"
                else time.monotonic() - first_failed[0]
            ),
            requests_ok=load_after["ok"] - load_before["ok"],
            requests_failed=load_after["failed"] - load_before["failed"],
            served_by={k: v for k, v in served.items() if v},
        )  # fmt: skip

    def report(self) -> tuple[Path, Path | None]:
        out = self.cfg.out / "report"
        proc = subprocess.run(
            [sys.executable, "-m", "coalmine.cli.main", "report", NAME,
             "-n", self.cfg.namespace, "--out", str(out)],
            env={**os.environ, "KUBECONFIG": str(self.kube().kubeconfig)},
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise DemoError(f"coalmine report failed: {proc.stderr.strip()}")
        html = png = None
        for line in proc.stdout.splitlines():
            if line.startswith("report: "):
                html = Path(line.removeprefix("report: "))
            elif line.startswith("png: ") and line.endswith(".png"):
                png = Path(line.removeprefix("png: "))
            elif line.startswith("png: "):
                self.say(line)
        if html is None:
            raise DemoError(f"coalmine report wrote no page: {proc.stdout}")
        return html, png


def summary(result: Result, say: Callable[[str], None]) -> None:
    say("")
    say("== Summary")
    for r in result.rollouts:
        outcome = {"RolledBack": "ROLLED BACK"}.get(r.outcome, r.outcome.upper())
        line = f"  {r.from_version} -> {r.version}: {outcome} {r.seconds:.0f}s after kubectl apply"
        if r.first_failed_to_rollback is not None:
            line += f" ({r.first_failed_to_rollback:.0f}s from the failed verdict to the rollback)"
        say(line)
        say(f"     reason: {r.reason}")
        served = ", ".join(f"{k}: {v}" for k, v in sorted(r.served_by.items()))
        say(f"     requests: {r.requests_ok} ok, {r.requests_failed} failed ({served})")
    load = result.load
    say(
        f"  client traffic: {load['ok']} requests served, {load['failed']} failed"
        f" (codes {load.get('codes')})"
    )
    say(f"  report: {result.report_html}")
    say(f"  png:    {result.report_png or 'not written (needs chromium)'}")
    say(f"  took {result.elapsed:.0f}s in all")


def run(cfg: Config) -> Result:
    """The whole story; raises one of FAILURES with the reason when a step fails."""
    demo = Demo(cfg)
    cfg.out.mkdir(parents=True, exist_ok=True)
    demo.act("1. Cluster", "a real Kubernetes on this machine, offline")
    demo.start_cluster()
    demo.act("2. Images", "serving, operator and client images, built without Docker")
    demo.images()
    demo.act("3. Coalmine", "installed with its Helm chart, watching one namespace")
    demo.install()
    demo.act("4. Models", "three versions of an iris classifier, registered as ModelVersions")
    demo.models()
    demo.act("5. Serve v1", "a ModelDeployment serves v1; a client pod sends steady traffic")
    client = demo.serve()
    try:
        demo.act(
            "6. Roll out v2 (better)",
            "canary 25% -> analysis -> 50% -> analysis -> promote; errors, latency and"
            " prediction shift measured per variant",
        )
        v2 = demo.roll("iris-v2", client)
        demo.act(
            "7. Roll out v3 (mislabelled)",
            "v3 never errors and is fast; only the shift of its predictions against"
            " stable's gives it away",
        )
        v3 = demo.roll("iris-v3", client)
        time.sleep(5)  # a little traffic after the rollback, for the record
    finally:
        load = client.stop_load()
    demo.act("8. Report", "coalmine report iris: the v3 rollout drawn as HTML and PNG")
    html, png = demo.report()
    result = Result([v2, v3], load, html, png, time.monotonic() - demo.t0)
    summary(result, cfg.say)
    (cfg.out / "result.json").write_text(json.dumps(asdict(result), indent=2, default=str))
    return result


def down(cfg: Config) -> None:
    """Remove what the demo created (per its state file); never a cluster it did not start."""
    say = cfg.say
    try:
        state = State(**json.loads(cfg.state_file.read_text()))
    except (OSError, ValueError, TypeError):
        state = State(kubeconfig=str(cfg.kubeconfig or local_kubeconfig()))
        state.namespaces = [cfg.namespace, cfg.system_namespace]
        state.release, state.release_namespace = cfg.release, cfg.system_namespace
        state.model_store = cfg.namespace
        say(f"no state file ({cfg.state_file}): removing the default names, keeping CRDs")
    kube = Cluster.at(Path(state.kubeconfig))
    if not kube.ready():
        say("the cluster is not running: nothing to remove in it")
    else:
        if state.release:
            helm = helm_bin(say)
            subprocess.run(
                [helm, "uninstall", state.release, "-n", state.release_namespace,
                 "--kubeconfig", state.kubeconfig, "--wait", "--timeout", "2m"],
                capture_output=True, text=True, timeout=180, check=False,
            )  # fmt: skip
            say(f"helm uninstall {state.release} -n {state.release_namespace}")
        for ns in state.namespaces:
            kube.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false")
        for ns in state.namespaces:
            kube.kubectl("wait", "--for=delete", f"namespace/{ns}", "--timeout=180s",
                         check=False, timeout=200)  # fmt: skip
            say(f"namespace {ns} deleted")
        if state.model_store:
            remove_models(kube, state.model_store)
            say(f"PV {model_store.pv_name(state.model_store)} deleted")
        if state.crds_installed:
            kube.kubectl("delete", "-f", str(REPO / "crds"), "--ignore-not-found", timeout=180)
            say("CRDs deleted (the demo had installed them)")
        else:
            say("CRDs kept (they were there before the demo)")
    cfg.state_file.unlink(missing_ok=True)
    if state.cluster_started:
        say("the demo started the local cluster; stop it with: make cluster-down")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down"])
    args = parser.parse_args(argv)
    # Each line as it happens, also into a pipe or a CI log (`make demo | tee`).
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    cfg = Config.from_env()
    try:
        if args.command == "up":
            run(cfg)
        else:
            down(cfg)
    except FAILURES as err:
        print(f"\ndemo failed: {err}", file=sys.stderr)
        print("clean up with: make demo-down", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
