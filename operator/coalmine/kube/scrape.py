"""Read the serving pods' /metrics over HTTP, for the built-in analysis."""

from __future__ import annotations

import urllib.request
from typing import Any

from coalmine.resources.deployment import PORT

SCRAPE_TIMEOUT = 3.0


def scrape_pod(pod: dict[str, Any]) -> str | None:
    """The pod's Prometheus exposition text; None when it cannot be read."""
    ip = pod.get("status", {}).get("podIP")
    if not ip:
        return None
    try:
        with urllib.request.urlopen(f"http://{ip}:{PORT}/metrics", timeout=SCRAPE_TIMEOUT) as r:
            text: str = r.read().decode("utf-8", "replace")
            return text
    except OSError:
        return None
