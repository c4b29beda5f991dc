"""How the operator copes with many ModelDeployments: convergence time, memory, API requests.

For each N (default 100, 500 and 1,000) a fresh operator process (`counted_operator.py`:
`coalmine operator` with its API requests counted) watches the `bench-ops`
namespace, where one ModelVersion is applied and validated first; then N
ModelDeployments with `replicas: 0` are applied in one `kubectl apply
--server-side`. Reported per N:

- converge: seconds from the start of that apply until every ModelDeployment
  has status.observedGeneration == metadata.generation, a stable Deployment
  with 0 replicas and its Service (polled with list calls every 2 s),
  and until every one is also Ready (the steady window starts then);
- peak RSS of the operator process (VmHWM, read after the steady window);
- API requests per object made by the operator from the apply until all are
  Ready, counted in the operator process (exact, not sampled from the API
  server), and per object per minute in a steady window afterwards;
- mean reconcile time from `coalmine_reconcile_duration_seconds`;
- CPU seconds the operator and each control-plane process (API server, etcd,
  controller-manager, scheduler) used from the apply until all were Ready: on
  one 2-core machine they share the cores, so this says who the time went to;
- the load average before and after, because the figures are only as clean as
  the machine was quiet.

Needs the cluster, the serving image loaded (the ModelVersion check Job runs
it) and the CRDs (applied from crds/ only when missing). Run from the
repository root; results go to benchmarks/operator/results.json:

    PYTHONPATH=. .venv/bin/python benchmarks/operator/run.py [--sizes 100,500,1000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from kubernetes import config

from benchmarks.common import clean_up, loadavg, prepare
from coalmine.controller import WORKERS
from coalmine.kube.client import Kube
from tests.support.cluster import Cluster, ensure_namespace, free_port, wait_for
from tests.support.models import provide_models

HERE = Path(__file__).resolve().parent
NAMESPACE = "bench-ops"
MODEL_VERSION = "iris-v1"
MANAGED = {"app.kubernetes.io/managed-by": "coalmine"}
RESTRICTED = [("pod-security.kubernetes.io/enforce", "restricted")]
SAMPLE = re.compile(r'^(\w+)\{client="(\w+)",method="(\w+)",resource="([\w/]+)"\} (\S+)$')


def scrape(port: int) -> dict[str, float]:
    """Request counts by `client method resource`, and the ModelDeployment reconcile sums."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if m := SAMPLE.match(line):
            if m[1] == "coalmine_bench_api_requests_total":
                out[f"{m[2]} {m[3]} {m[4]}"] = float(m[5])
        elif 'kind="ModelDeployment"' in line:
            name, value = line.split(" ")
            for suffix in ("count", "sum"):
                if name.startswith(f"coalmine_reconcile_duration_seconds_{suffix}{{"):
                    out[f"reconcile_{suffix}"] = out.get(f"reconcile_{suffix}", 0.0) + float(value)
    return out


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}


def requests_only(counts: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in counts.items() if " " in k}


def model_deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "coalmine.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "modelVersion": MODEL_VERSION,
            "replicas": 0,
            "strategy": {"steps": [{"setWeight": 50}]},
        },
    }


def converged(kube: Kube) -> tuple[int, int]:
    """ModelDeployments observed with their objects, and those Ready; from three lists."""
    deployments = {d["metadata"]["name"]: d for d in kube.list("Deployment", NAMESPACE, MANAGED)}
    services = {s["metadata"]["name"] for s in kube.list("Service", NAMESPACE, MANAGED)}
    observed = ready = 0
    for md in kube.list("ModelDeployment", NAMESPACE):
        name, status = md["metadata"]["name"], md.get("status") or {}
        stable = deployments.get(f"{name}-stable")
        observed += (
            status.get("observedGeneration") == md["metadata"]["generation"]
            and stable is not None
            and stable["spec"].get("replicas") == 0
            and name in services
        )
        ready += any(
            c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
        )
    return observed, ready


CONTROL_PLANE = ("kube-apiserver", "etcd", "kube-controller", "kube-scheduler")
"""Process names (/proc/PID/comm, cut at 15 characters) of the local cluster's control plane."""


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU seconds so far of each named process (0 when it is gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            found[name] = 0.0
            continue
        found[name] = (int(fields[11]) + int(fields[12])) / tick
    return found


def control_plane() -> dict[str, int]:
    """The control plane's processes on this host, by name."""
    pids = {}
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:
            continue
        if name in CONTROL_PLANE:
            pids[name] = int(comm.parent.name)
    return pids


def memory(pid: int) -> dict[str, int]:
    """VmHWM (peak) and VmRSS of a process, in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {k: int(fields[k].split()[0]) // 1024 for k in ("VmHWM", "VmRSS")}


def start_operator(cluster: Cluster, port: int, log: Path, workers: int) -> subprocess.Popen[bytes]:
    shim = str(HERE / "counted_operator.py")
    args = ["operator", "--namespace", NAMESPACE, "--metrics-port", str(port)]
    return subprocess.Popen(
        [sys.executable, shim, *args, "--workers", str(workers)],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def problems(log: Path) -> list[str]:
    lines = log.read_text(errors="replace").splitlines()
    return [line for line in lines if re.search(r" (ERROR|WARNING|CRITICAL) |Traceback", line)]


def run_one(
    cluster: Cluster, kube: Kube, trained: Path, n: int, steady: float, workers: int
) -> dict[str, Any]:
    ensure_namespace(cluster, NAMESPACE, RESTRICTED)
    versions = provide_models(cluster, NAMESPACE, trained)
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="coalmine-bench-ops-")) / "operator.log"
    op = start_operator(cluster, port, log, workers)
    try:
        cluster.apply(versions[MODEL_VERSION], namespace=NAMESPACE)
        wait_for(
            f"{MODEL_VERSION} to be validated",
            lambda: (
                (kube.get("ModelVersion", NAMESPACE, MODEL_VERSION) or {})
                .get("status", {})
                .get("phase")
                == "Validated"
            ),
            timeout=240,
        )
        load_before, before = loadavg(), scrape(port)
        processes = {"operator": op.pid, **control_plane()}
        cpu_before = cpu_seconds(processes)
        docs = [model_deployment(f"md-{i:04d}") for i in range(n)]
        started = time.monotonic()
        cluster.kubectl(
            "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs), timeout=900
        )
        applied = time.monotonic() - started
        half: float | None = None
        converge: float | None = None
        while True:
            observed, ready = converged(kube)
            took = time.monotonic() - started
            if half is None and observed >= n / 2:
                half = took
            if converge is None and observed == n:
                converge = took
            if converge is not None and ready == n:
                break
            if took > 1800:
                raise TimeoutError(f"{observed}/{n} observed, {ready} Ready after 30 min")
            time.sleep(2)
        all_ready = time.monotonic() - started
        cpu_used = {k: round(v - cpu_before[k], 1) for k, v in cpu_seconds(processes).items()}
        load_converged, at_converged = loadavg(), scrape(port)
        time.sleep(steady)
        at_end, mem = scrape(port), memory(op.pid)
        load_after = loadavg()
    finally:
        op.send_signal(signal.SIGTERM)
        try:
            op.wait(timeout=60)
        except subprocess.TimeoutExpired:
            op.kill()
        clean_up(cluster, NAMESPACE, timeout=900)
    converging = delta(at_converged, before)
    resync = delta(at_end, at_converged)
    reqs = requests_only(converging)
    reconciles = max(1.0, converging.get("reconcile_count", 0))
    return {
        "n": n,
        "workers": workers,
        "apply_seconds": round(applied, 1),
        "half_converged_seconds": round(half, 1) if half is not None else None,
        "converge_seconds": round(converge, 1),
        "all_ready_seconds": round(all_ready, 1),
        "cpu_seconds_until_ready": cpu_used,
        "peak_rss_mib": mem["VmHWM"],
        "rss_mib": mem["VmRSS"],
        "startup_requests": int(sum(requests_only(before).values())),
        "requests_per_object": round(sum(reqs.values()) / n, 2),
        "requests_per_object_by_kind": {k: round(v / n, 2) for k, v in sorted(reqs.items())},
        "reconciles_per_object": round(converging.get("reconcile_count", 0) / n, 2),
        "mean_reconcile_ms": round(1000 * converging.get("reconcile_sum", 0) / reconciles, 1),
        "steady_seconds": steady,
        "steady_requests_per_object_per_minute": round(
            sum(requests_only(resync).values()) / n * 60 / steady, 2
        ),
        "steady_requests_per_object_per_minute_by_kind": {
            k: round(v / n * 60 / steady, 2) for k, v in sorted(requests_only(resync).items())
        },
        "steady_reconciles_per_object_per_minute": round(
            resync.get("reconcile_count", 0) / n * 60 / steady, 2
        ),
        "loadavg": {"before": load_before, "converged": load_converged, "after": load_after},
        "operator_log_problems": problems(log)[:20],
        "operator_log": str(log),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,500,1000", help="comma-separated N")
    parser.add_argument("--steady-seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=WORKERS, help="the operator's --workers")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    cluster, trained = prepare()
    kube = Kube(config.new_client_from_config(str(cluster.kubeconfig)))  # type: ignore[no-untyped-call]
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        print(f"N={n}: running (load average {loadavg()})", flush=True)
        results.append(run_one(cluster, kube, trained, n, args.steady_seconds, args.workers))
        print(json.dumps(results[-1], indent=2), flush=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"\n{'N':>5} {'apply s':>8} {'50% s':>7} {'100% s':>7} {'Ready s':>7} {'peak RSS':>9} "
        f"{'req/obj':>8} {'rec/obj':>8} {'rec ms':>7} {'steady req/obj/min':>19}  load avg"
    )
    for r in results:
        print(
            f"{r['n']:>5} {r['apply_seconds']:>8} {r['half_converged_seconds']!s:>7} "
            f"{r['converge_seconds']:>7} {r['all_ready_seconds']:>7} {r['peak_rss_mib']:>5} MiB "
            f"{r['requests_per_object']:>8} "
            f"{r['reconciles_per_object']:>8} {r['mean_reconcile_ms']:>7} "
            f"{r['steady_requests_per_object_per_minute']:>19}  "
            f"{r['loadavg']['before']} -> {r['loadavg']['after']}"
        )
    for r in results:
        used = ", ".join(f"{k} {v}" for k, v in r["cpu_seconds_until_ready"].items())
        print(f"N={r['n']}: CPU seconds until all Ready: {used}")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
