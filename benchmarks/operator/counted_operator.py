"""`coalmine operator` with every API request it makes counted; a benchmark shim.

    python benchmarks/operator/counted_operator.py operator --namespace 'bench-*' --metrics-port P

Same arguments as `coalmine`. In this process only, it wraps `Kube.request` (every
read and write of the reconcilers) and aiohttp's request method (kopf's lists and
watches), and exports the counts next to the operator's own metrics, on
--metrics-port, as `coalmine_bench_api_requests_total{client,method,resource}`.
Product code is untouched.
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from prometheus_client import Counter

from coalmine.cli.main import main
from coalmine.kube.client import Kube

REQUESTS = Counter(
    "coalmine_bench_api_requests",
    "API requests the operator made, by client (coalmine or kopf), method and resource.",
    ["client", "method", "resource"],
)


def resource(path: str) -> str:
    """`deployments`, `modeldeployments/status`, ... from an API path."""
    parts = urlsplit(path).path.strip("/").split("/")
    parts = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if parts[:1] == ["namespaces"] and len(parts) >= 3:
        parts = parts[2:]
    if not parts:
        return "discovery"
    return parts[0] + (f"/{parts[2]}" if len(parts) > 2 else "")


_kube_call = Kube.request
_aiohttp_request = aiohttp.ClientSession._request


def _counted_call(self: Kube, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
    REQUESTS.labels("coalmine", method, resource(path)).inc()
    return _kube_call(self, method, path, *args, **kwargs)


async def _counted_request(
    self: aiohttp.ClientSession, method: str, url: Any, *args: Any, **kwargs: Any
) -> Any:
    REQUESTS.labels("kopf", method, resource(str(url))).inc()
    return await _aiohttp_request(self, method, url, *args, **kwargs)


Kube.request = _counted_call  # type: ignore[method-assign]
aiohttp.ClientSession._request = _counted_request  # type: ignore[method-assign,assignment]

if __name__ == "__main__":
    sys.exit(main())
