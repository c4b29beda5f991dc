"""Time from fault onset to 100% stable traffic when a bad canary is rolled back.

Each run gets its own `bench-roll-*` namespace: the example models on a PVC, a
client pod, `iris` serving iris-v1 (2 replicas) under a bounded load
(concurrency 4) where a quarter of the requests carry BAD_ROW, then
spec.modelVersion changes to iris-errors, which answers those with HTTP 500.
The strategy is the e2e tests' (setWeight 25, analysis, setWeight 50,
analysis; error rate, p99 latency and prediction shift) with the analysis
interval set per run. From the load generator's per-second timeline and the
ModelDeployment's status:

- onset: the first second with a failed request;
- 100% stable: the time of the RolledBack history entry (status.phase turns
  RolledBack and the client Service selects stable in that same reconcile);
- client-visible end: the end of the last second with a failed request;
- failed requests per rollout, their share of requests between onset and
  rollback, and those later than rollback + 3 s (kube-proxy's delay).

Seconds of the timeline are whole, so onset and end are exact to 1 s. One
operator process (`coalmine operator --namespace 'bench-roll-*'`) serves all
runs. Needs the cluster with the serving and test-http images loaded and the
CRDs (applied from crds/ only when missing). Run from the repository root;
results go to benchmarks/rollout/results.json:

    PYTHONPATH=. .venv/bin/python benchmarks/rollout/run.py [--intervals 5,10] [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.common import clean_up, loadavg, prepare
from tests.support.client import InClusterClient
from tests.support.cluster import Cluster, ensure_namespace
from tests.support.models import provide_models
from tests.support.rollout import (
    BAD_ROW,
    ROWS,
    Rollout,
    failures_after,
    first_failure,
    rolled_back,
    strategy,
)

HERE = Path(__file__).resolve().parent
TEST_HTTP_IMAGE = "coalmine/test-http:0.1.0"
RESTRICTED = [("pod-security.kubernetes.io/enforce", "restricted")]


def timestamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def strategy_every(interval: int) -> dict[str, Any]:
    """The e2e strategy with every analysis step measured each `interval` seconds."""
    strat = strategy()
    strat["steps"] = [
        {"analysis": {**s["analysis"], "interval": f"{interval}s"}} if "analysis" in s else s
        for s in strat["steps"]
    ]
    return strat


def measure(md: dict[str, Any], load: dict[str, Any]) -> dict[str, Any]:
    """Onset, rollback and end of failures, in seconds since the load started."""
    seconds = load["seconds"]
    entry = md["status"]["history"][-1]
    rollback = timestamp(entry["time"]) - timestamp(load["started"])
    onset = first_failure(load)
    failing = [i for i, s in enumerate(seconds) if s["failed"]]
    window = seconds[onset : int(rollback) + 1] if onset is not None else []
    sent = sum(s["ok"] + s["failed"] for s in window)
    return {
        "outcome": entry["outcome"],
        "reason": md["status"].get("message", ""),
        "onset_s": onset,
        "rollback_s": round(rollback, 2),
        "last_failure_end_s": failing[-1] + 1 if failing else None,
        "onset_to_stable_s": round(rollback - onset, 2) if onset is not None else None,
        "onset_to_last_failure_s": failing[-1] + 1 - onset if onset is not None else None,
        "failed": load["failed"],
        "ok": load["ok"],
        "failed_share_onset_to_rollback": round(
            sum(s["failed"] for s in window) / sent if sent else 0.0, 3
        ),
        "failed_after_rollback_plus_3s": failures_after(load, rollback + 3),
    }


def run_once(
    cluster: Cluster, trained: Path, interval: int, index: int, logs: Path
) -> dict[str, Any]:
    namespace = f"bench-roll-{interval}s-{index}-{uuid.uuid4().hex[:4]}"
    load_before = loadavg()
    ensure_namespace(cluster, namespace, RESTRICTED)
    try:
        models = provide_models(cluster, namespace, trained)
        client = InClusterClient(cluster, namespace, TEST_HTTP_IMAGE)
        rollout = Rollout(cluster, namespace, client, models)
        strat = strategy_every(interval)
        rollout.register("iris-v1", "iris-errors")
        with (logs / f"{namespace}.log").open("w") as log, contextlib.redirect_stdout(log):
            rollout.serve("iris-v1", strat, [*ROWS[:6], BAD_ROW, BAD_ROW])
            out = rollout.change("iris-errors", strat, rolled_back)
        result = measure(out.md, out.load)
    finally:
        clean_up(cluster, namespace, timeout=300)
    return {
        "interval_s": interval,
        "run": index,
        "namespace": namespace,
        **result,
        "loadavg": {"before": load_before, "after": loadavg()},
    }


def summary(runs: list[dict[str, Any]], interval: int) -> dict[str, Any]:
    mine = [r for r in runs if r["interval_s"] == interval]
    stable = [r["onset_to_stable_s"] for r in mine if r["onset_to_stable_s"] is not None]
    end = [r["onset_to_last_failure_s"] for r in mine if r["onset_to_last_failure_s"] is not None]
    return {
        "interval_s": interval,
        "runs": len(mine),
        "rolled_back": sum(r["outcome"] == "RolledBack" for r in mine),
        "onset_to_stable_median_s": statistics.median(stable) if stable else None,
        "onset_to_stable_max_s": max(stable, default=None),
        "onset_to_stable_median_intervals": round(statistics.median(stable) / interval, 2)
        if stable
        else None,
        "onset_to_last_failure_median_s": statistics.median(end) if end else None,
        "onset_to_last_failure_max_s": max(end, default=None),
        "failed_per_rollout": [r["failed"] for r in mine],
        "failed_share_onset_to_rollback": [r["failed_share_onset_to_rollback"] for r in mine],
        "failed_after_rollback_plus_3s": sum(r["failed_after_rollback_plus_3s"] for r in mine),
        "loadavg_1m": [r["loadavg"]["before"].split()[0] for r in mine],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--intervals", default="5,10", help="analysis intervals in seconds")
    parser.add_argument("--runs", type=int, default=5, help="runs per interval")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    cluster, trained = prepare()
    logs = Path(tempfile.mkdtemp(prefix="coalmine-bench-rollout-"))
    operator = subprocess.Popen(
        [sys.executable, "-m", "coalmine.cli.main", "operator", "--namespace", "bench-roll-*"],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        stdout=(logs / "operator.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    runs: list[dict[str, Any]] = []
    try:
        for interval in (int(s) for s in args.intervals.split(",")):
            for index in range(1, args.runs + 1):
                print(f"interval {interval}s run {index} (load average {loadavg()})", flush=True)
                try:
                    runs.append(run_once(cluster, trained, interval, index, logs))
                except Exception as exc:  # one broken run is reported, the others still count
                    print(f"  run failed: {exc!r}", flush=True)
                    continue
                print(f"  {json.dumps(runs[-1])}", flush=True)
    finally:
        operator.send_signal(signal.SIGTERM)
        operator.wait(timeout=60)
    log = (logs / "operator.log").read_text(errors="replace").splitlines()
    problems = [line for line in log if re.search(r" (ERROR|WARNING|CRITICAL) |Traceback", line)]
    intervals = sorted({r["interval_s"] for r in runs})
    result: dict[str, Any] = {
        "summary": [summary(runs, i) for i in intervals],
        "runs": runs,
        "operator_log_problems": problems[:30],
        "logs": str(logs),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\n{'interval':>8} {'runs':>4} {'onset->stable med/max s':>24} {'in intervals':>12} "
        f"{'onset->last failure med/max s':>30} {'failed per rollout':>20} {'late':>4}  load avg 1m"
    )
    for s in result["summary"]:
        print(
            f"{s['interval_s']:>7}s {s['runs']:>4} "
            f"{s['onset_to_stable_median_s']!s:>15} / {s['onset_to_stable_max_s']!s:<6} "
            f"{s['onset_to_stable_median_intervals']!s:>12} "
            f"{s['onset_to_last_failure_median_s']!s:>21} / "
            f"{s['onset_to_last_failure_max_s']!s:<6} "
            f"{','.join(map(str, s['failed_per_rollout'])):>20} "
            f"{s['failed_after_rollback_plus_3s']:>4}  {','.join(s['loadavg_1m'])}"
        )
    print(f"\n'late' = failed requests after rollback + 3 s; written to {args.out}")


if __name__ == "__main__":
    main()
