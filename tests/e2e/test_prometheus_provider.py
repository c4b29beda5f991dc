"""The `prometheus` analysis provider against a real Prometheus (Debian's package).

Prometheus runs on the host and scrapes the serving pods' /metrics every
second (tests/e2e/prometheus.py: file_sd, since Debian builds Prometheus without
Kubernetes service discovery); the rollout's analysis is a PromQL error rate of
the canary.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.prometheus import host_prometheus, serving_targets
from tests.support.client import InClusterClient
from tests.support.cluster import Cluster
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
    work = tmp_path_factory.mktemp("prometheus")
    with host_prometheus(
        work, lambda: {"coalmine-serving": serving_targets(cluster)}, {"coalmine-serving": {}}
    ) as address:
        yield address


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
