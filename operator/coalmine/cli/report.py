"""`coalmine report`: one rollout drawn as a self-contained HTML page (and a PNG of it).

`render(md)` is pure: a ModelDeployment (as the API returns it) in, an HTML page out,
with inline SVG charts and no script, stylesheet or font from anywhere else. It draws
status.rolloutRecord: the weight over time, each metric per variant, every analysis
verdict, and where the rollout was promoted or rolled back. `screenshot` turns the page
into a PNG with headless Chromium, when it is installed.
"""

from __future__ import annotations

import html
import json
import math
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from coalmine.api.deployment import ModelDeploymentStatus, PointMetric, RecordPoint, RolloutRecord
from coalmine.cli.shadow import ShadowView
from coalmine.cli.timeline import audit_lines

WIDTH, HEIGHT = 1120, 136
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 22, 26
COLORS = {"canary": "#d9480f", "stable": "#1c7ed6", "weight": "#d9480f"}
VERDICT_COLORS = {
    "Successful": "#2b8a3e",
    "Failed": "#c92a2a",
    "Inconclusive": "#868e96",
    "Error": "#e67700",
}
END_COLORS = {"Promoted": "#2b8a3e", "RolledBack": "#c92a2a", "Aborted": "#c92a2a"}
END_LABELS = {
    "Promoted": "promoted",
    "RolledBack": "rolled back",
    "Aborted": "aborted",
    "Superseded": "superseded",
}
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


@dataclass(frozen=True)
class Panel:
    """One metric chart: which record metrics it draws and how to print their values."""

    title: str
    kinds: tuple[str, ...]
    words: tuple[str, ...]
    unit: str
    scale: float = 1.0
    variants: tuple[str, ...] = ("canary", "stable")


PANELS = (
    Panel("Error rate per variant", ("errorRate",), ("error",), "%", 100.0),
    Panel(
        "Latency p99 per variant",
        ("latencyP99", "latencyP95", "latencyP50"),
        ("latency", "p99"),
        " ms",
    ),
    Panel(
        "Prediction shift, canary vs stable",
        ("predictionShift",),
        ("shift",),
        "",
        variants=("canary",),
    ),
    Panel(
        "Agreement with stable on copied rows",
        ("agreement",),
        ("agree",),
        "%",
        100.0,
        variants=("canary",),
    ),
    Panel(
        "Prediction delta |canary - stable|, p95",
        ("predictionDelta",),
        ("delta",),
        "",
        variants=("canary",),
    ),
    Panel("Accuracy on labelled rows", ("accuracy",), ("accuracy",), "%", 100.0),
    Panel("Mean absolute error on labelled rows", ("meanAbsoluteError",), ("mae",), ""),
)


def _ts(value: datetime) -> float:
    return value.timestamp()


def _fmt(value: float, unit: str = "") -> str:
    return f"{value:.3g}{unit}"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def _metric_for(panel: Panel, metrics: dict[str, PointMetric]) -> tuple[str, PointMetric] | None:
    """The record metric a panel draws: by builtin kind, else by a word in its name."""
    for kind in panel.kinds:
        for name, m in sorted(metrics.items()):
            if m.kind == kind:
                return name, m
    for name, m in sorted(metrics.items()):
        if m.kind in (None, "prometheus") and any(w in name.lower() for w in panel.words):
            return name, m
    return None


@dataclass
class Frame:
    """Time axis shared by every chart: seconds since the rollout started."""

    start: float
    span: float

    def x(self, t: float) -> float:
        return LEFT + (t - self.start) / self.span * (WIDTH - LEFT - RIGHT)


def _y(value: float, top: float) -> float:
    return TOP + (1 - value / top) * (HEIGHT - TOP - BOTTOM) if top > 0 else HEIGHT - BOTTOM


def _nice_top(values: Sequence[float]) -> float:
    """A round upper bound of the y axis, 10% above the highest value."""
    top = max([v for v in values if v > 0], default=1.0) * 1.1
    exp = math.floor(math.log10(top))
    return next((c for f in (1, 2, 2.5, 5) if (c := f * 10.0**exp) >= top), 10.0 ** (exp + 1))


def _axes(frame: Frame, top: float, unit: str, scale: float) -> list[str]:
    parts = []
    bottom_y = HEIGHT - BOTTOM
    parts.append(
        f'<line x1="{LEFT}" y1="{bottom_y}" x2="{WIDTH - RIGHT}" y2="{bottom_y}" class="axis"/>'
    )
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom_y}" class="axis"/>')
    for fraction in (0.0, 0.5, 1.0):
        value = top * fraction
        y = _y(value, top)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
            f"{html.escape(_fmt(value * scale, unit))}</text>"
        )
    step = _tick_step(frame.span)
    for i in range(int(frame.span // step) + 1):
        t = frame.start + i * step
        parts.append(
            f'<text x="{frame.x(t):.1f}" y="{HEIGHT - 8}" class="tick" text-anchor="middle">'
            f"{_duration(t - frame.start)}</text>"
        )
    return parts


def _tick_step(span: float) -> float:
    """Seconds between time ticks: a round figure giving at most 8 ticks."""
    steps = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)
    return next((float(s) for s in steps if span / s <= 8), span / 6)


def _end_marker(frame: Frame, end: RecordPoint | None, label: bool) -> list[str]:
    if end is None or end.outcome not in END_LABELS:
        return []
    x = frame.x(_ts(end.time))
    color = END_COLORS.get(end.outcome, "#495057")
    parts = [
        f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" '
        f'stroke="{color}" stroke-width="2" stroke-dasharray="5 3" class="end-marker"/>'
    ]
    if label:
        text = END_LABELS[end.outcome].upper()
        middle = TOP + (HEIGHT - TOP - BOTTOM) / 2 + 4
        parts.append(
            f'<text x="{x - 6:.1f}" y="{middle:.1f}" fill="{color}" class="end-label" '
            'text-anchor="end" paint-order="stroke" stroke="white" stroke-width="4">'
            f"{text} at {_duration(_ts(end.time) - frame.start)}</text>"
        )
    return parts


def _polyline(points: list[tuple[float, float]], color: str, step: bool, dash: str = "") -> str:
    if not points:
        return ""
    coords: list[tuple[float, float]] = []
    for i, (x, y) in enumerate(points):
        if step and i:
            coords.append((x, coords[-1][1]))
        coords.append((x, y))
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    line = f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{extra}/>'
    if step:
        return line
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>' for x, y in points)
    return line + dots


def _legend(items: list[tuple[str, str, str]]) -> list[str]:
    parts = []
    for i, (label, color, dash) in enumerate(items):
        y = TOP + 8 + i * 16
        x = WIDTH - RIGHT + 14
        style = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{x}" y1="{y}" x2="{x + 18}" y2="{y}" stroke="{color}" '
            f'stroke-width="2"{style}/>'
            f'<text x="{x + 24}" y="{y + 4}" class="tick">{html.escape(label)}</text>'
        )
    return parts


def _svg(title: str, body: list[str], css_class: str) -> str:
    return (
        f'<figure class="{css_class}"><figcaption>{html.escape(title)}</figcaption>'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{html.escape(title)}">'
        + "".join(body)
        + "</svg></figure>"
    )


def _verdict_mark(x: float, y: float, outcome: str, text: str) -> str:
    color = VERDICT_COLORS.get(outcome, "#495057")
    shape = (
        f'<path d="M{x - 5:.1f},{y - 5:.1f} L{x + 5:.1f},{y + 5:.1f} M{x + 5:.1f},{y - 5:.1f} '
        f'L{x - 5:.1f},{y + 5:.1f}" stroke="{color}" stroke-width="3"/>'
        if outcome == "Failed"
        else f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{color}" stroke="white"/>'
    )
    css = f"verdict verdict-{outcome.lower()}"
    return f'<g class="{css}"><title>{html.escape(text)}</title>{shape}</g>'


def _weight_chart(frame: Frame, rec: RolloutRecord, end: RecordPoint | None) -> str:
    body = _axes(frame, 100, "%", 1)
    line = [(frame.x(_ts(p.time)), _y(p.canary_weight, 100)) for p in rec.points]
    if line and end is None:
        line.append((frame.x(frame.start + frame.span), line[-1][1]))
    body.append(_polyline(line, COLORS["weight"], step=True))
    for p in rec.points:
        if p.outcome in VERDICT_COLORS:
            x, y = frame.x(_ts(p.time)), _y(p.canary_weight, 100)
            summary = ", ".join(
                f"{name} {_fmt(m.canary)}" for name, m in (p.metrics or {}).items() if m.canary
            )
            body.append(_verdict_mark(x, y, p.outcome or "", f"{p.outcome}: {summary}"))
    body += _end_marker(frame, end, label=True)
    body += _legend(
        [
            (f"{rec.version} share", COLORS["weight"], ""),
            ("verdict: passed", VERDICT_COLORS["Successful"], ""),
            ("verdict: failed", VERDICT_COLORS["Failed"], ""),
        ]
    )
    return _svg(f"Traffic to {rec.version} (canary weight) and analysis verdicts", body, "weight")


def _metric_chart(
    frame: Frame, rec: RolloutRecord, end: RecordPoint | None, panel: Panel
) -> str | None:
    judged = [
        (p, found)
        for p in rec.points
        if p.metrics and (found := _metric_for(panel, p.metrics)) is not None
    ]
    if not judged:
        return None
    name = judged[0][1][0]
    threshold = next((m.max for _, (_, m) in judged if m.max is not None), None)
    values = [
        v
        for _, (_, m) in judged
        for v in (m.canary, m.stable if "stable" in panel.variants else None)
        if v is not None
    ]
    # The threshold sets the scale only when it is near the data: a limit far above
    # (latency 250 ms against 4 ms measured) would flatten every line to the axis.
    data_top = max(values, default=0.0)
    off_scale = threshold is not None and data_top > 0 and threshold > 3 * data_top
    top = _nice_top([*values, *([threshold] if threshold is not None and not off_scale else [])])
    body = _axes(frame, top, panel.unit, panel.scale)
    legend: list[tuple[str, str, str]] = []
    for variant in panel.variants:
        pick: Callable[[PointMetric], float | None] = (
            (lambda m: m.canary) if variant == "canary" else (lambda m: m.stable)
        )
        line = [
            (frame.x(_ts(p.time)), _y(value, top))
            for p, (_, m) in judged
            if (value := pick(m)) is not None
        ]
        if line:
            label = rec.version if variant == "canary" else (rec.from_version or "stable")
            body.append(_polyline(line, COLORS[variant], step=False))
            legend.append((f"{variant} ({label})", COLORS[variant], ""))
    if threshold is not None and off_scale:
        above = f"max {_fmt(threshold * panel.scale, panel.unit)} (above)"
        legend.append((above, "#c92a2a", "2 3"))
    elif threshold is not None:
        y = _y(threshold, top)
        body.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
            'stroke="#c92a2a" stroke-width="1" stroke-dasharray="2 3"/>'
        )
        legend.append((f"max {_fmt(threshold * panel.scale, panel.unit)}", "#c92a2a", "2 3"))
    for p, (_, m) in judged:
        if m.canary is not None:
            body.append(
                _verdict_mark(
                    frame.x(_ts(p.time)),
                    _y(m.canary, top),
                    m.outcome,
                    f"{name}: {m.outcome} ({_fmt(m.canary * panel.scale, panel.unit)})",
                )
            )
    body += _end_marker(frame, end, label=False)
    body += _legend(legend)
    return _svg(f"{panel.title} ({name})", body, "metric")


def _verdict_table(frame: Frame, rec: RolloutRecord) -> str:
    rows = []
    for p in rec.points:
        if p.outcome is None:
            continue
        figures = "; ".join(
            f"{html.escape(name)} {m.outcome}: canary "
            f"{'-' if m.canary is None else _fmt(m.canary)}"
            + ("" if m.stable is None else f", stable {_fmt(m.stable)}")
            for name, m in (p.metrics or {}).items()
        )
        detail = figures or html.escape(p.message or "")
        css = "bad" if p.outcome in ("Failed", "RolledBack", "Aborted") else ""
        rows.append(
            f'<tr class="{css}"><td>{_duration(_ts(p.time) - frame.start)}</td>'
            f"<td>{'' if p.step_index is None else p.step_index + 1}</td>"
            f"<td>{p.canary_weight}%</td><td>{html.escape(p.outcome or '')}</td>"
            f"<td>{detail}</td></tr>"
        )
    return (
        "<table><thead><tr><th>at</th><th>step</th><th>weight</th><th>verdict</th>"
        "<th>figures</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


CSS = """
body{font:13px/1.35 system-ui,-apple-system,"Segoe UI",sans-serif;margin:14px 24px;color:#212529}
h1{font-size:20px;margin:0 0 4px} .sub{color:#495057;margin:0 0 8px}
h2{font-size:15px;margin:12px 0 2px}
.verdict-box{display:inline-block;padding:3px 10px;border-radius:4px;color:#fff;font-weight:700}
.promoted{background:#2b8a3e} .rolledback{background:#c92a2a} .running{background:#1c7ed6}
dl{display:grid;grid-template-columns:max-content auto;gap:1px 12px;margin:6px 0 8px}
dt{color:#495057} dd{margin:0}
figure{margin:2px 0} figcaption{font-weight:600;font-size:12px;color:#343a40}
.axis{stroke:#495057;stroke-width:1} .grid{stroke:#e9ecef;stroke-width:1}
.tick{font-size:10px;fill:#495057} .end-label{font-size:11px;font-weight:700}
table{border-collapse:collapse;font-size:11px;margin-top:8px}
td,th{border-bottom:1px solid #dee2e6;padding:2px 8px;text-align:left;vertical-align:top}
tr.bad td{color:#c92a2a}
"""


def render(md: dict[str, Any], shadow: ShadowView | None = None) -> str:
    """The report page of a ModelDeployment's current or last rollout (pure); with what the
    stable pods compared of its canary in shadow steps, when given."""
    meta = md.get("metadata") or {}
    name, namespace = str(meta.get("name", "?")), str(meta.get("namespace", "default"))
    status = ModelDeploymentStatus.model_validate(md.get("status") or {})
    rec = status.rollout_record
    title = f"Coalmine rollout report: {namespace}/{name}"
    if rec is None or not rec.points:
        body = (
            f"<h1>{html.escape(title)}</h1><p>No rollout recorded yet: status.rolloutRecord is"
            " empty (a rollout starts when spec.modelVersion changes).</p>"
        )
        return _page(title, body)
    end = next(
        (p for p in reversed(rec.points) if p.outcome in END_LABELS),
        None,
    )
    start = _ts(rec.started_at)
    last = max(_ts(p.time) for p in rec.points)
    span = max(last - start, 10.0) * 1.04
    frame = Frame(start, span)
    first_failed = next((p for p in rec.points if p.outcome == "Failed"), None)
    if end is None:
        verdict, css = "IN PROGRESS", "running"
    elif end.outcome == "Promoted":
        verdict, css = "PROMOTED", "promoted"
    else:
        verdict, css = END_LABELS[end.outcome or ""].upper(), "rolledback"
    facts = [
        ("versions", f"{rec.from_version or '-'} (stable) → {rec.version} ({rec.model_version})"),
        ("revision", str(rec.revision)),
        ("started", rec.started_at.strftime("%Y-%m-%d %H:%M:%S %Z")),
    ]
    if end is not None:
        what = "time to rollback" if end.outcome != "Promoted" else "time to promotion"
        facts.append((what, f"{_duration(_ts(end.time) - start)} after the rollout started"))
        if first_failed is not None and end.outcome != "Promoted":
            facts.append(
                (
                    "failed verdict → rollback",
                    _duration(_ts(end.time) - _ts(first_failed.time)),
                )
            )
        if end.message:
            facts.append(("reason", end.message))
    judged = [p for p in rec.points if p.outcome in VERDICT_COLORS]
    facts.append(
        (
            "analysis verdicts",
            ", ".join(
                f"{sum(p.outcome == o for p in judged)} {o.lower()}"
                for o in VERDICT_COLORS
                if any(p.outcome == o for p in judged)
            )
            or "none",
        )
    )
    charts = [_weight_chart(frame, rec, end)]
    charts += [c for panel in PANELS if (c := _metric_chart(frame, rec, end, panel)) is not None]
    body = (
        f"<h1>{html.escape(title)}</h1>"
        f'<p class="sub"><span class="verdict-box {css}">{verdict}</span> '
        f"{html.escape(rec.from_version or '-')} → {html.escape(rec.version)}, "
        f"revision {rec.revision}</p>"
        "<dl>"
        + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts)
        + "</dl>"
        + "".join(charts)
        + _verdict_table(frame, rec)
        + ("" if shadow is None else _shadow_section(shadow))
        + _audit_trail(status, rec)
    )
    return _page(title, body)


def _shadow_section(view: ShadowView) -> str:
    """Agreement, the confusion of classes (stable's in rows, the canary's in columns) and
    the newest disagreeing rows, as the stable pods hold them now."""
    share = f"{100 * view.agreeing / view.compared:.1f}%" if view.compared else "-"
    parts = [
        "<h2>Shadow comparison with stable</h2>",
        f"<p>{view.compared} rows compared by {view.pods} stable pod(s);"
        f" the canary agreed on {view.agreeing} ({share}).</p>",
    ]
    parts += [f'<p class="bad">not read: {html.escape(why)}</p>' for why in view.unread]
    if view.confusion:
        stable = sorted({s for s, _ in view.confusion})
        canary = sorted({c for _, c in view.confusion})
        head = "".join(f"<th>canary {html.escape(c)}</th>" for c in canary)
        rows = "".join(
            f"<tr><th>stable {html.escape(s)}</th>"
            + "".join(
                f'<td class="{"" if s == c else "bad" if view.confusion.get((s, c)) else ""}">'
                f"{view.confusion.get((s, c), 0)}</td>"
                for c in canary
            )
            + "</tr>"
            for s in stable
        )
        parts.append(
            f'<table class="confusion"><thead><tr><th></th>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    if view.examples:
        rows = "".join(
            f"<tr><td>{html.escape(_compact(e.get('inputs')))}</td>"
            f"<td>{html.escape(_compact(e.get('stable')))}</td>"
            f"<td>{html.escape(_compact(e.get('canary_answer')))}</td></tr>"
            for e in view.examples
        )
        parts.append(
            "<table><thead><tr><th>inputs (disagreeing rows, newest first)</th>"
            "<th>stable</th><th>canary</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    return "".join(parts)


def _compact(value: Any) -> str:
    """A row or an answer in one short line."""
    text = json.dumps(value, separators=(", ", ": "), default=str)
    return text if len(text) <= 240 else text[:239] + "…"


def _audit_trail(status: ModelDeploymentStatus, rec: RolloutRecord) -> str:
    """Who approved this revision and who commanded it, from its history entries (and the
    commands of a rollout still running)."""
    rows = []
    for h in status.history:
        if h.revision != rec.revision:
            continue
        who = audit_lines(h)
        rows.append(
            f"<tr><td>{h.time:%Y-%m-%d %H:%M:%S}</td><td>{html.escape(h.outcome)}</td>"
            f"<td>{'<br>'.join(html.escape(w) for w in who) or 'no approval, no command'}</td>"
            "</tr>"
        )
    rows.extend(
        f"<tr><td>{c.time:%Y-%m-%d %H:%M:%S}</td><td>{html.escape(c.command)}</td>"
        f"<td>{html.escape(c.text())}</td></tr>"
        for c in status.commands
    )
    canary = status.canary
    if not rows and canary is not None and canary.revision == rec.revision and canary.approval:
        text = html.escape(canary.approval.text())
        rows.append(f"<tr><td></td><td>approval</td><td>{text}</td></tr>")
    if not rows:
        return ""
    return (
        "<h2>Audit trail</h2><table><thead><tr><th>time</th><th>what</th><th>who and why</th>"
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def chromium() -> str | None:
    """Path of a Chromium binary, if one is installed."""
    return next((p for n in CHROMIUM_NAMES if (p := shutil.which(n))), None)


def screenshot(page: Path, png: Path, *, timeout: float = 90, size: str = "1200,900") -> None:
    """A PNG of `page` taken with headless Chromium (raises when it is missing or fails)."""
    binary = chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="coalmine-chromium-") as profile:
        proc = subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--run-all-compositor-stages-before-draw",
                "--virtual-time-budget=3000",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={size}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if proc.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}")
