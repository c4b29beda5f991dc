"""The `prometheus` analysis provider against a real Prometheus (Debian's package).

Prometheus runs on the host and scrapes the serving pods' /metrics every
second. Debian builds Prometheus without Kubernetes service discovery, so the
fixture keeps a file_sd targets file in step with the pods; the rollout's
analysis is a PromQL error rate of the canary.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.support.client import InClusterClient
from tests.support.cluster import Cluster, free_port, wait_for
from tests.support.operator import OperatorProcess
from tests.support.rollout import BAD_ROW, ROWS, Rollout, report, rolled_back

ERROR_RATE = (
    'sum(rate(coalmine_request_errors_total{namespace="{{namespace}}",variant="canary",'
    'code=~"5.."}[{{interval}}])) / '
    'sum(rate(coalmine_requests_total{namespace="{{namespace}}",variant="canary"}[{{interval}}]))'
)


@pytest.fixture(scope="module")
def prometheus(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus on 127.0.0.1 scraping every serving pod of the tests' namespaces."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run `make host-deps` (Debian package prometheus)")
    work = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "coalmine-serving",
                "file_sd_configs": [{"files": [str(work / "targets.json")]}],
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    (work / "targets.json").write_text("[]")
    stop = threading.Event()

    def discover() -> None:
        """Serving pods of every namespace -> file_sd targets, once a second."""
        while not stop.wait(1):
            try:
                pods = json.loads(
                    cluster.kubectl(
                        "get", "pods", "-A", "-l", "coalmine.dev/variant", "-o", "json"
                    ).stdout
                )["items"]
            except RuntimeError:
                continue
            targets = [
                {
                    "targets": [f"{p['status']['podIP']}:8080"],
                    "labels": {
                        "namespace": p["metadata"]["namespace"],
                        "pod": p["metadata"]["name"],
                    },
                }
                for p in pods
                if p["status"].get("podIP")
            ]
            tmp = work / "targets.json.tmp"
            tmp.write_text(json.dumps(targets))
            tmp.replace(work / "targets.json")

    watcher = threading.Thread(target=discover, daemon=True)
    watcher.start()
    port = free_port()
    address = f"http://127.0.0.1:{port}"
    log = (work / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            "Prometheus to be ready",
            lambda: urllib.request.urlopen(f"{address}/-/ready", timeout=2).status == 200,
            timeout=60,
        )
        yield address
    finally:
        stop.set()
        watcher.join(timeout=10)
        proc.terminate()
        proc.wait(timeout=30)


def test_canary_rolled_back_on_a_promql_error_rate(
    cluster: Cluster,
    namespace: str,
    client: InClusterClient,
    models: dict[str, dict[str, Any]],
    operator: OperatorProcess,
    prometheus: str,
) -> None:
    analysis = {
        "interval": "5s",
        "count": 3,
        "metrics": [
            {
                "name": "prom-error-rate",
                "provider": "prometheus",
                "prometheus": {"address": prometheus, "query": ERROR_RATE},
                "threshold": {"max": 0.05},
            }
        ],
    }
    strat = {
        "steps": [{"setWeight": 25}, {"analysis": analysis}, {"setWeight": 50}],
        "progressDeadlineSeconds": 90,
        "abortScaleDownDelaySeconds": 0,
    }
    rollout = Rollout(cluster, namespace, client, models)
    rollout.register("iris-v1", "iris-errors")
    rollout.serve("iris-v1", strat, [*ROWS[:6], BAD_ROW, BAD_ROW])
    out = rollout.change("iris-errors", strat, rolled_back)
    report("prometheus", out)
    status = out.md["status"]
    assert "prom-error-rate" in status["message"], status["message"]
    failed = [m for m in status["lastAnalysis"]["metrics"] if m["outcome"] == "Failed"]
    assert [m["name"] for m in failed] == ["prom-error-rate"]
    assert failed[0]["value"] > 0.05
