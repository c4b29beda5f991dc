"""`make demo`: a model shipped safely and a bad one caught, on a local cluster.

    .venv/bin/python hack/demo/demo.py up      # the whole story (make demo)
    .venv/bin/python hack/demo/demo.py down    # remove what it created (make demo-down)

Acts: cluster -> images -> Coalmine by Helm -> models -> serve v1 under client traffic ->
kubectl apply v2 (promoted) -> kubectl apply v3 (rolled back by prediction shift) ->
summary and the HTML/PNG report of the v3 rollout.

Settings (environment): DEMO_PACE=human|fast (human: short pauses to read, the default),
DEMO_NAMESPACE (coalmine-demo), DEMO_SYSTEM_NAMESPACE (coalmine-system), DEMO_RELEASE
(coalmine), DEMO_OUT (_out/demo), KUBECONFIG (a cluster to use instead of the local one).
tests/e2e/test_demo.py runs `run(Config(...))` and `down(...)` from this file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
MANIFESTS = EXAMPLES / "demo"
LOCAL_KUBECONFIG = (
    Path(os.environ.get("COALMINE_CLUSTER_DIR", "/var/lib/coalmine-cluster")) / "admin.kubeconfig"
)
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

sys.path.insert(0, str(EXAMPLES))
import model_store  # noqa: E402  (examples/model_store.py)

T = TypeVar("T")


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why."""


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


def wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 1) -> T:
    """Poll `check` until it returns something truthy; fail clearly after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (RuntimeError, OSError, ValueError, KeyError) as err:
            last_error = err
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


def kubectl_binary() -> str:
    versions = (REPO / "hack" / "localcluster" / "versions.env").read_text()
    kube = next(line.split("=", 1)[1] for line in versions.splitlines() if "KUBE_VERSION=" in line)
    cache = Path(
        os.environ.get("COALMINE_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "coalmine"
    )
    built = cache / f"kubernetes-{kube.strip()}" / "bin" / "kubectl"
    return str(built) if built.exists() else "kubectl"


class Kube:
    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.bin = kubectl_binary()

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 180
    ) -> str:
        proc = subprocess.run(
            [self.bin, "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def apply(self, *docs: dict[str, Any], namespace: str | None = None) -> None:
        ns = ["-n", namespace] if namespace else []
        self("apply", "--server-side", "--force-conflicts", *ns, "-f", "-",
             input=yaml.safe_dump_all(docs))  # fmt: skip

    def apply_file(self, path: Path, namespace: str) -> None:
        self("apply", "--server-side", "--force-conflicts", "-n", namespace, "-f", str(path))

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        ns = ["-n", namespace] if namespace else []
        out = self("get", kind, name, *ns, "-o", "json", "--ignore-not-found")
        return json.loads(out) if out.strip() else None


class Client:
    """The in-cluster client pod's load generator, reached from the host by pod IP."""

    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, path: str, body: Any = None, timeout: float = 15) -> dict[str, Any]:
        req = urllib.request.Request(
            self.base + path,
            data=None if body is None else json.dumps(body).encode(),
            method="GET" if body is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result

    def fetch(self, url: str, body: Any) -> int:
        answer = self.call("/fetch?url=" + urllib.parse.quote(url, safe=""), body)
        return int(answer.get("status", 0))

    def start(self, url: str, bodies: list[Any]) -> None:
        self.call(
            "/load/start",
            {
                "url": url,
                "bodies": bodies,
                "concurrency": LOAD_CONCURRENCY,
                "maxRequests": 2_000_000,
                "maxSeconds": LOAD_MAX_SECONDS,
            },
        )

    def status(self) -> dict[str, Any]:
        return self.call("/load/status")

    def stop(self) -> dict[str, Any]:
        self.call("/load/stop", {})
        return wait_for("the client's load to stop", lambda: _stopped(self.status()), timeout=30)


def _stopped(status: dict[str, Any]) -> dict[str, Any] | None:
    return status if status.get("running") is False else None


def infer_body(row: list[float]) -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": row}]}


class Demo:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.t0 = time.monotonic()
        self.kube: Kube | None = None
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

    def run_quiet(self, what: str, cmd: Sequence[str], timeout: float) -> str:
        """Run a build step; its output goes to a log file, shown only when it fails."""
        log = self.cfg.out / "logs" / (what.replace(" ", "-") + ".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as f:
            try:
                proc = subprocess.run(
                    list(cmd),
                    cwd=REPO,
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as err:
                raise DemoError(f"{what} took more than {timeout:.0f}s (log: {log})") from err
        if proc.returncode != 0:
            tail = "\n".join(log.read_text().splitlines()[-25:])
            raise DemoError(f"{what} failed (exit {proc.returncode}); log {log}:\n{tail}")
        return log.read_text()

    # --- acts ------------------------------------------------------------------------
    def cluster(self) -> Kube:
        cfg = self.cfg
        if cfg.kubeconfig is not None:
            self.say(f"using the cluster KUBECONFIG names: {cfg.kubeconfig}")
            kube = Kube(cfg.kubeconfig)
            started = False
        else:
            kube = Kube(LOCAL_KUBECONFIG)
            running = (
                LOCAL_KUBECONFIG.exists()
                and subprocess.run(
                    [kube.bin, "--kubeconfig", str(LOCAL_KUBECONFIG), "get", "--raw", "/readyz"],
                    capture_output=True,
                    timeout=20,
                    check=False,
                ).returncode
                == 0
            )
            if running:
                self.say(f"the local cluster is already running ({LOCAL_KUBECONFIG})")
            else:
                self.say("starting the local cluster: make cluster-up (first time: ~10 min)")
                self.run_quiet("cluster up", ["make", "-s", "cluster-up"], timeout=3600)
            started = not running
        kube("get", "--raw", "/readyz")
        self.kube = kube
        previous = self._previous_state()
        self.state = State(
            kubeconfig=str(kube.kubeconfig),
            cluster_started=started or (previous is not None and previous.cluster_started),
        )
        if previous is not None:  # a re-run keeps what the first run created
            self.state.crds_installed = previous.crds_installed
        self.save()
        return kube

    def _previous_state(self) -> State | None:
        try:
            return State(**json.loads(self.cfg.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def images(self) -> None:
        if not self.cfg.build_images:
            self.say("images: using those already in the cluster")
            return
        for target, archive in IMAGES.items():
            self.say(f"building {target} (cached when nothing changed)")
            self.run_quiet(f"make {target}", ["make", "-s", target], timeout=3600)
            path = REPO / "_out" / "images" / archive
            if self._local():
                self.run_quiet(
                    f"load {archive}",
                    [str(REPO / "hack" / "localcluster" / "load-image.sh"), str(path)],
                    timeout=600,
                )
            else:
                self.say(f"  not the local cluster: make {path.name} available to its nodes")

    def _local(self) -> bool:
        assert self.kube is not None
        return self.kube.kubeconfig.resolve() == LOCAL_KUBECONFIG.resolve()

    def install(self) -> None:
        kube, state, cfg = self.kube, self.state, self.cfg
        assert kube is not None
        assert state is not None
        crds = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds").glob("*.yaml"))]
        names = [c["metadata"]["name"] for c in crds]
        existing = [n for n in names if kube.get("crd", n) is not None]
        if not existing:
            state.crds_installed = True
        self.save()
        self.say(f"CRDs: applying crds/ ({len(names)}; {len(existing)} already present)")
        kube("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
        kube("wait", "--for=condition=Established", "--timeout=60s",
             *[f"crd/{n}" for n in names])  # fmt: skip
        for ns in (cfg.system_namespace, cfg.namespace):
            kube.apply(
                {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": ns, "labels": RESTRICTED}}
            )  # fmt: skip
            if ns not in state.namespaces:
                state.namespaces.append(ns)
        state.release, state.release_namespace = cfg.release, cfg.system_namespace
        self.save()
        helm = self.helm()
        values = cfg.out / f"values-{cfg.namespace}.yaml"
        values.write_text(
            yaml.safe_dump({"watchNamespaces": [cfg.namespace], "crds": {"install": False}})
        )
        self.say(
            f"helm upgrade --install {cfg.release} charts/coalmine -n {cfg.system_namespace}"
            f" (watching only {cfg.namespace})"
        )
        self.run_quiet(
            "helm install",
            [helm, "upgrade", "--install", cfg.release, str(REPO / "charts" / "coalmine"),
             "--namespace", cfg.system_namespace, "--kubeconfig", str(kube.kubeconfig),
             "--values", str(values), "--wait", "--timeout", "5m"],
            timeout=400,
        )  # fmt: skip
        self.say("the operator is Ready")

    def helm(self) -> str:
        out = self.run_quiet("helm build", [str(REPO / "hack" / "helm" / "build.sh")], 1800)
        return out.strip().splitlines()[-1]

    def models(self) -> dict[str, dict[str, Any]]:
        kube, cfg = self.kube, self.cfg
        assert kube is not None
        assert self.state is not None
        trained = cfg.out / "models"
        if not (trained / "modelversions.yaml").exists():
            self.say("training iris-v1 (fair), iris-v2 (better), iris-v3 (mislabelled) ...")
            self.run_quiet(
                "train",
                [sys.executable, str(EXAMPLES / "train.py"), "--out", str(trained),
                 "--uri-prefix", f"pvc://{model_store.CLAIM}/"],
                timeout=900,
            )  # fmt: skip
        else:
            self.say(f"models already trained in {trained.relative_to(REPO)}")
        self.state.model_store = cfg.namespace
        self.save()
        model_store.provide(kube, cfg.namespace, trained)
        self.say(f"model store: PV {model_store.pv_name(cfg.namespace)} + PVC coalmine-models")
        docs = {
            d["metadata"]["name"]: d
            for d in yaml.safe_load_all((trained / "modelversions.yaml").read_text())
        }
        chosen = [docs[v] for v in VERSIONS]
        kube.apply(*chosen, namespace=cfg.namespace)
        for v in VERSIONS:
            wait_for(
                f"ModelVersion {v} to be Validated (digest and a test load)",
                lambda v=v: self._phase("modelversion", v) == "Validated",  # type: ignore[misc]
                timeout=240,
            )
            self.say(f"ModelVersion {v}: Validated ({docs[v]['spec'].get('version')})")
        return docs

    def _phase(self, kind: str, name: str) -> str | None:
        assert self.kube is not None
        body = self.kube.get(kind, name, self.cfg.namespace) or {}
        phase = (body.get("status") or {}).get("phase")
        if phase == "Invalid":
            message = (body.get("status") or {}).get("message")
            raise DemoError(f"{kind} {name} is Invalid: {message}")
        return str(phase) if phase else None

    def serve(self) -> Client:
        kube, ns = self.kube, self.cfg.namespace
        assert kube is not None
        kube.apply_file(MANIFESTS / "rolloutstrategy.yaml", ns)
        kube.apply_file(MANIFESTS / "modeldeployment-v1.yaml", ns)
        self.say("kubectl apply -f examples/demo/modeldeployment-v1.yaml")
        kube("-n", ns, "wait", "--for=condition=Ready", f"modeldeployment/{NAME}",
             "--timeout=240s", timeout=260)  # fmt: skip
        self.say("iris serves v1")
        kube.apply_file(MANIFESTS / "client.yaml", ns)
        kube("-n", ns, "wait", "--for=condition=Available", "deployment/client",
             "--timeout=120s", timeout=140)  # fmt: skip
        pods = json.loads(kube("-n", ns, "get", "pods", "-l", "app=client", "-o", "json"))
        ip = next(
            p["status"]["podIP"]
            for p in pods["items"]
            if not p["metadata"].get("deletionTimestamp") and p["status"].get("podIP")
        )
        client = Client(f"http://{ip}:8080")
        url = self.url()
        wait_for(
            "the iris Service to answer the client",
            lambda: client.fetch(url, infer_body(ROWS[0])) == 200,
            timeout=90,
        )
        client.start(url, [infer_body(r) for r in ROWS])
        wait_for("the client's first answers", lambda: int(client.status()["ok"]) >= 20, 60)
        self.say(
            f"client pod {ip}: {LOAD_CONCURRENCY} concurrent requests to {url}"
            f" (at most {LOAD_MAX_SECONDS}s)"
        )
        return client

    def url(self) -> str:
        ns = self.cfg.namespace
        return f"http://{NAME}.{ns}.svc.cluster.local/v2/models/{NAME}/infer"

    def status(self) -> dict[str, Any]:
        assert self.kube is not None
        md = self.kube.get("modeldeployment", NAME, self.cfg.namespace) or {}
        return md

    def roll(self, version: str, client: Client, timeout: float = 420) -> RolloutResult:
        """kubectl apply the manifest naming `version`; follow the rollout to its end."""
        kube, ns = self.kube, self.cfg.namespace
        assert kube is not None
        before = self.status()
        from_version = ((before.get("status") or {}).get("stable") or {}).get("version", "?")
        manifest = MANIFESTS / f"modeldeployment-{version.removeprefix('iris-')}.yaml"
        load_before = client.status()
        started = time.monotonic()
        kube.apply_file(manifest, ns)
        self.say(f"kubectl apply -f {manifest.relative_to(REPO)}")
        generation = (self.status().get("metadata") or {}).get("generation")
        seen: tuple[Any, ...] | None = None
        strategy = yaml.safe_load((MANIFESTS / "rolloutstrategy.yaml").read_text())
        steps = len(strategy["spec"]["steps"])
        first_failed: float | None = None
        deadline = started + timeout
        while True:
            md = self.status()
            st = md.get("status") or {}
            load = client.status()
            line, key = progress_line(st, load, steps)
            if key != seen:
                seen = key
                self.say(line)
            analysis = st.get("lastAnalysis") or {}
            if analysis.get("outcome") == "Failed" and first_failed is None:
                first_failed = time.monotonic()
            ended = ended_outcome(st, version, generation)
            if ended is not None:
                break
            if time.monotonic() > deadline:
                raise DemoError(
                    f"the rollout to {version} did not end within {timeout:.0f}s: "
                    f"phase {st.get('phase')}: {st.get('message')}"
                )
            time.sleep(1)
        seconds = time.monotonic() - started
        history = [h for h in st.get("history", []) if h.get("modelVersion") == version]
        reason = (history[-1].get("reason") if history else None) or st.get("message") or ""
        load_after = client.status()
        served = {
            k: v - (load_before.get("versions") or {}).get(k, 0)
            for k, v in (load_after.get("versions") or {}).items()
        }
        return RolloutResult(
            model_version=version,
            version=version.removeprefix("iris-"),
            from_version=from_version,
            outcome=ended,
            reason=reason,
            seconds=seconds,
            first_failed_to_rollback=(
                None if first_failed is None or ended == "Promoted"
                else time.monotonic() - first_failed
            ),
            requests_ok=load_after["ok"] - load_before["ok"],
            requests_failed=load_after["failed"] - load_before["failed"],
            served_by={k: v for k, v in served.items() if v},
        )  # fmt: skip

    def report(self) -> tuple[Path, Path | None]:
        assert self.kube is not None
        out = self.cfg.out / "report"
        proc = subprocess.run(
            [sys.executable, "-m", "coalmine.cli.main", "report", NAME,
             "-n", self.cfg.namespace, "--out", str(out)],
            env={**os.environ, "KUBECONFIG": str(self.kube.kubeconfig)},
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


def progress_line(
    st: dict[str, Any], load: dict[str, Any], steps: int = 0
) -> tuple[str, tuple[Any, ...]]:
    """One line about the rollout, and the key that says whether anything changed."""
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


def ended_outcome(st: dict[str, Any], version: str, generation: Any) -> str | None:
    """Promoted or RolledBack once the rollout to `version` is over."""
    if st.get("observedGeneration") != generation:
        return None
    if st.get("phase") == "Healthy" and (st.get("stable") or {}).get("modelVersion") == version:
        return "Promoted"
    if st.get("phase") == "RolledBack":
        return "RolledBack"
    return None


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
    """The whole story; raises DemoError with the reason when a step fails."""
    demo = Demo(cfg)
    cfg.out.mkdir(parents=True, exist_ok=True)
    demo.act("1. Cluster", "a real Kubernetes on this machine, offline")
    demo.cluster()
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
        load = client.stop()
    demo.act("8. Report", "coalmine report iris: the v3 rollout drawn as HTML and PNG")
    html, png = demo.report()
    result = Result([v2, v3], load, html, png, time.monotonic() - demo.t0)
    summary(result, cfg.say)
    return result


def down(cfg: Config) -> None:
    """Remove what the demo created (per its state file); never a cluster it did not start."""
    say = cfg.say
    try:
        state = State(**json.loads(cfg.state_file.read_text()))
    except (OSError, ValueError, TypeError):
        state = State(kubeconfig=str(cfg.kubeconfig or LOCAL_KUBECONFIG))
        state.namespaces = [cfg.namespace, cfg.system_namespace]
        state.release, state.release_namespace = cfg.release, cfg.system_namespace
        state.model_store = cfg.namespace
        say(f"no state file ({cfg.state_file}): removing the default names, keeping CRDs")
    kube = Kube(Path(state.kubeconfig))
    if kube("get", "--raw", "/readyz", check=False, timeout=20).strip() != "ok":
        say("the cluster is not running: nothing to remove in it")
    else:
        if state.release:
            helm = Demo(cfg).helm()
            subprocess.run(
                [helm, "uninstall", state.release, "-n", state.release_namespace,
                 "--kubeconfig", state.kubeconfig, "--wait", "--timeout", "2m"],
                capture_output=True, text=True, timeout=180, check=False,
            )  # fmt: skip
            say(f"helm uninstall {state.release} -n {state.release_namespace}")
        for ns in state.namespaces:
            kube("delete", "namespace", ns, "--ignore-not-found", "--wait=false")
        for ns in state.namespaces:
            kube("wait", "--for=delete", f"namespace/{ns}", "--timeout=180s",
                 check=False, timeout=200)  # fmt: skip
            say(f"namespace {ns} deleted")
        if state.model_store:
            model_store.remove(kube, state.model_store)
            say(f"PV {model_store.pv_name(state.model_store)} deleted")
        if state.crds_installed:
            kube("delete", "-f", str(REPO / "crds"), "--ignore-not-found", timeout=180)
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
    cfg = Config.from_env()
    try:
        if args.command == "up":
            run(cfg)
        else:
            down(cfg)
    except DemoError as err:
        print(f"\ndemo failed: {err}", file=sys.stderr)
        print("clean up with: make demo-down", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
