"""Render a ModelDeployment's rollout as a timeline a person reads at a glance (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from coalmine.api.deployment import HistoryEntry, ModelDeployment, VariantStatus
from coalmine.api.monitoring import MONITORED
from coalmine.api.strategy import RolloutStrategySpec, describe_step

MARKS = {"done": "✓", "current": "▶", "todo": " ", "failed": "✗"}


def _clock(value: datetime | str | None) -> str:
    if value is None:
        return "        "
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.strftime("%H:%M:%S")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def render(
    md: ModelDeployment, strategy: RolloutStrategySpec | None, events: list[dict[str, Any]]
) -> str:
    """Status, steps with progress marks, the last analysis, events and history."""
    st = md.status
    ns = md.metadata.namespace or "default"
    lines = [f"{md.metadata.name} (namespace {ns})"]
    if st is None:
        return "\n".join([*lines, "  not reconciled yet: is the operator running?"])
    lines.append(f"  phase   {st.phase}" + (f": {st.message}" if st.message else ""))
    lines.append(f"  stable  {variant_line(st.stable) if st.stable else '-'}")
    if st.canary is not None:
        lines.append(f"  canary  {variant_line(st.canary)}")
    if st.stable_floor is not None and st.stable_floor_until is not None:
        lines.append(
            f"  hpa     holds at least {st.stable_floor} stable pods until"
            f" {_clock(st.stable_floor_until)} (the rollout's end plus its scale-down window)"
        )
    if st.url:
        lines.append(f"  url     {st.url}")
    if strategy is not None and strategy.steps:
        lines.append("steps")
        current = st.current_step_index
        rolling = st.canary is not None and st.phase in ("Progressing", "Paused")
        failed = st.phase == "RolledBack"
        for i, step in enumerate(strategy.steps):
            if current is None or not (rolling or failed):
                mark = MARKS["todo"]
            elif i < current:
                mark = MARKS["done"]
            elif i == current:
                mark = MARKS["failed"] if failed else MARKS["current"]
            else:
                mark = MARKS["todo"]
            lines.append(f"  {mark} {i + 1:>2}  {describe_step(step, detail=True)}")
    if st.last_analysis is not None:
        a = st.last_analysis
        where = f"rev {a.revision}, step {a.step_index + 1}"
        lines.append(f"last analysis  {where}: {a.outcome} at {_clock(a.time)}")
        lines.append(f"  {'metric':<20} {'canary':>10} {'stable':>10} {'samples':>8}  verdict")
        for m in a.metrics:
            lines.append(
                f"  {m.name:<20} {_fmt(m.value):>10} {_fmt(m.stable_value):>10} "
                f"{m.sample_count if m.sample_count is not None else '-':>8}  {m.outcome}"
                + (f"  {m.message}" if m.message else "")
            )
    lines.extend(monitoring_lines(md))
    if events:
        lines.append("events")
        for e in sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or ""):
            when = _clock(e.get("lastTimestamp") or e.get("eventTime"))
            lines.append(
                f"  {when}  {e.get('type', ''):<7} {e.get('reason', ''):<18} {e.get('message', '')}"
            )
    if st.history:
        lines.append("history")
        for h in st.history:
            lines.append(f"  {history_line(h)}")
            lines.extend(f"      {a}" for a in audit_lines(h))
    return "\n".join(lines)


STATE_MARKS = {"Firing": "✗", "Pending": "!", "Ok": "✓", "Unknown": "?"}


def monitoring_lines(md: ModelDeployment) -> list[str]:
    """The day-2 panel: ModelHealthy, then each check per variant with its last figure and
    since when it is in its state."""
    st = md.status
    if st is None or st.monitoring is None:
        return []
    health = next((c for c in st.conditions if c.type == MONITORED), None)
    head = "monitoring"
    if health is not None:
        head += f"  ModelHealthy {health.status} ({health.reason})"
    if st.monitoring.measured_at is not None:
        head += f", measured at {_clock(st.monitoring.measured_at)}"
    lines = [head, f"  {'check':<20} {'variant':<16} {'value':>10}  state     since"]
    for c in st.monitoring.checks:
        where = f"{c.variant} {c.version}"
        lines.append(
            f"  {STATE_MARKS[c.state]} {c.name:<18} {where:<16} {_fmt(c.value):>10}  "
            f"{c.state:<8}  {_clock(c.since)}" + (f"  {c.message}" if c.message else "")
        )
    return lines


def variant_line(v: VariantStatus) -> str:
    """Version, revision, the pinned digest, what changed, and the traffic it gets."""
    what = [v.model_version, f"rev {v.revision}"]
    if v.pin is not None:
        what.append(f"sha256 {v.pin.sha256[:12]}")
    if v.changes:
        what.append(f"changed: {', '.join(v.changes)}")
    line = f"{v.version} ({', '.join(what)}), weight {v.weight}%"
    if v.traffic_share is not None and v.traffic_share != v.weight:
        line += f" (gets {v.traffic_share}%)"
    line += f", mirror {v.mirror}%" if v.mirror else ""
    if v.replicas is not None:
        line += f", pods {v.ready_replicas or 0}/{v.replicas} ready"
    return line


def history_line(h: HistoryEntry) -> str:
    changed = f"  [{', '.join(h.changes)}]" if h.changes else ""
    return (
        f"rev {h.revision:<3} {h.model_version:<24} {h.version:<10} {h.outcome:<11}"
        f" {h.time:%Y-%m-%d %H:%M:%S}{changed}" + (f"  {h.reason}" if h.reason else "")
    )


def audit_lines(h: HistoryEntry) -> list[str]:
    """Who approved the revision, who commanded it, and its last verdict with the figures."""
    lines = [h.approval.text()] if h.approval is not None else []
    lines.extend(c.text() for c in h.commands)
    a = h.analysis
    if a is not None:
        figures = ", ".join(
            f"{m.name} {_fmt(m.value)} (stable {_fmt(m.stable_value)}) {m.outcome}"
            for m in a.metrics
        )
        lines.append(f"verdict {a.outcome} at step {a.step_index + 1}: {figures or 'no metrics'}")
    return lines
