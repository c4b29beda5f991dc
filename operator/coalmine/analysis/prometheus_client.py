"""The `prometheus` provider's only I/O: one instant query over the HTTP API."""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from typing import Any

QUERY_TIMEOUT = 5.0


def query_prometheus(address: str, query: str, timeout: float = QUERY_TIMEOUT) -> float:
    """The single number `query` yields now; NaN for an empty result (no data, which the
    verdict treats as Inconclusive). Raises on HTTP errors or more than one series."""
    url = f"{address.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = json.loads(response.read())
    return scalar_of(body)


def scalar_of(body: dict[str, Any]) -> float:
    """The number in a /api/v1/query response body."""
    if body.get("status") != "success":
        raise ValueError(f"prometheus: {body.get('errorType')}: {body.get('error')}")
    data = body["data"]
    if data["resultType"] == "scalar":
        return float(data["result"][1])
    if data["resultType"] != "vector":
        raise ValueError(f"prometheus: expected a scalar or vector, got {data['resultType']}")
    result = data["result"]
    if not result:
        return math.nan
    if len(result) > 1:
        raise ValueError(f"prometheus: query returned {len(result)} series, expected one")
    return float(result[0]["value"][1])
