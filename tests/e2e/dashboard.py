"""The chart's Grafana dashboard, read as data: its panels' PromQL and its variables,
run through Prometheus's HTTP API the way Grafana would, and drawn to a PNG.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.prometheus import api
from tests.support.cluster import REPO

DASHBOARD = REPO / "charts" / "coalmine" / "files" / "dashboards" / "coalmine.json"
LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


@dataclass(frozen=True)
class Query:
    panel: str
    expr: str


def load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def panel_queries(dashboard: dict[str, Any]) -> list[Query]:
    """Every target of every panel, rows' nested panels included."""
    panels = [*dashboard["panels"]]
    panels += [p for row in dashboard["panels"] for p in row.get("panels", [])]
    return [Query(p["title"], t["expr"]) for p in panels for t in p.get("targets", [])]


def variables(dashboard: dict[str, Any]) -> dict[str, str]:
    """Query variables: name -> Grafana query (label_values(...))."""
    found = {}
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            found[var["name"]] = query["query"] if isinstance(query, dict) else query
    return found


def substitute(expr: str, values: dict[str, str], rate_interval: str) -> str:
    """What Grafana sends: $__rate_interval and the variables (longest names first)."""
    out = expr.replace("$__rate_interval", rate_interval)
    for name in sorted(values, key=len, reverse=True):
        out = out.replace(f"${{{name}}}", values[name]).replace(f"${name}", values[name])
    return out


def variable_values(address: str, query: str, values: dict[str, str]) -> list[str]:
    """A label_values(...) variable through /api/v1/label/NAME/values, as Grafana runs it."""
    match = LABEL_VALUES.match(substitute(query, values, "1m"))
    assert match, f"not a label_values() query: {query}"
    params = {"match[]": match["selector"]} if match["selector"] else {}
    result: list[str] = api(address, f"label/{match['label']}/values", **params)
    return result


def draw(results: dict[Query, list[dict[str, Any]]], start: float, png: Path) -> None:
    """One chart per panel, every returned series a line over seconds since `start`."""
    import matplotlib  # noqa: PLC0415 - only the drawing test needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    titles = list(dict.fromkeys(q.panel for q in results))
    fig, axes = plt.subplots(len(titles), 1, figsize=(11, 2.6 * len(titles)), squeeze=False)
    for ax, title in zip(axes[:, 0], titles, strict=True):
        for query, series in results.items():
            if query.panel != title:
                continue
            for s in series:
                xs = [float(t) - start for t, _ in s["values"]]
                ys = [float(v) for _, v in s["values"]]
                label = ",".join(
                    f"{k}={v}" for k, v in s["metric"].items() if k not in ("namespace", "model")
                )
                ax.plot(xs, ys, label=label[:60])
        ax.set_title(title, loc="left", fontsize=10)
        ax.set_xlabel("seconds", fontsize=8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=80)
    plt.close(fig)
