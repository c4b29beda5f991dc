"""Debian's Prometheus on the host, scraping what the tests point it at.

Debian builds Prometheus without Kubernetes service discovery, so targets come
from file_sd: a thread rewrites one targets file per scrape job every second
from a `discover()` callable (pod IPs are reachable from the host).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import Cluster, free_port, wait_for

TargetGroups = list[dict[str, Any]]  # file_sd: [{"targets": ["ip:port"], "labels": {...}}]


def serving_targets(cluster: Cluster, namespace: str | None = None) -> TargetGroups:
    """Every serving pod (label coalmine.dev/variant) at :8080, with namespace and pod labels."""
    where = ["-n", namespace] if namespace else ["-A"]
    pods = json.loads(
        cluster.kubectl("get", "pods", *where, "-l", "coalmine.dev/variant", "-o", "json").stdout
    )["items"]
    return [pod_target(p, 8080) for p in pods if p["status"].get("podIP")]


def pod_target(pod: dict[str, Any], port: int) -> dict[str, Any]:
    meta = pod["metadata"]
    return {
        "targets": [f"{pod['status']['podIP']}:{port}"],
        "labels": {"namespace": meta["namespace"], "pod": meta["name"]},
    }


@contextmanager
def host_prometheus(
    work: Path,
    discover: Callable[[], dict[str, TargetGroups]],
    jobs: dict[str, dict[str, Any]],
) -> Iterator[str]:
    """Run Prometheus (1 s scrapes) with one file_sd job per `jobs` key; yield its URL.

    `jobs` maps a job name to extra scrape settings (e.g. honor_labels); `discover`
    returns the target groups per job name.
    """
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run `make host-deps` (Debian package prometheus)")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": job, **extra, "file_sd_configs": [{"files": [str(work / f"{job}.json")]}]}
            for job, extra in jobs.items()
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    for job in jobs:
        (work / f"{job}.json").write_text("[]")
    stop = threading.Event()

    def keep_targets() -> None:
        while not stop.wait(1):
            try:
                found = discover()
            except RuntimeError:  # kubectl failed for a moment: try again next second
                continue
            for job, groups in found.items():
                tmp = work / f"{job}.json.tmp"
                tmp.write_text(json.dumps(groups))
                tmp.replace(work / f"{job}.json")

    watcher = threading.Thread(target=keep_targets, daemon=True)
    watcher.start()
    port = free_port()
    address = f"http://127.0.0.1:{port}"
    with (work / "prometheus.log").open("wb") as log:
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


def api(address: str, path: str, **params: Any) -> Any:
    """GET Prometheus's HTTP API; the `data` of a successful answer."""
    query = urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(f"{address}/api/v1/{path}?{query}", timeout=30) as resp:
        answer = json.load(resp)
    assert answer["status"] == "success", answer
    return answer["data"]
