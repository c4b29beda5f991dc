"""Fill the placeholders of a `prometheus` metric's query from the ModelDeployment.

`{{namespace}}`, `{{deployment}}` (the ModelDeployment's name), `{{canary}}` and
`{{stable}}` (the `version` label of each variant's pods, i.e. the ModelVersion's
spec.version) and `{{interval}}` (the analysis interval, for `rate(...[...])`).
Double braces never occur in PromQL, so no escaping is needed.
"""

from __future__ import annotations

import re

from coalmine.api.deployment import ModelDeployment

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z]+)\s*\}\}")


def render_query(query: str, md: ModelDeployment, interval: str = "1m") -> str:
    """`query` with every placeholder replaced; ValueError names an unknown one."""
    status = md.status
    values = {
        "namespace": md.metadata.namespace or "default",
        "deployment": md.metadata.name,
        "canary": status.canary.version if status and status.canary else "",
        "stable": status.stable.version if status and status.stable else "",
        "interval": interval,
    }
    unknown = sorted({m for m in _PLACEHOLDER.findall(query) if m not in values})
    if unknown:
        raise ValueError(f"unknown placeholder(s) in query: {', '.join(unknown)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], query)
