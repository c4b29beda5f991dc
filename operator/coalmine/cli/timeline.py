"""Render a ModelDeployment's rollout as a timeline a person reads at a glance (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from coalmine.api.deployment import ModelDeployment
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
    stable = (
        f"{st.stable.version} ({st.stable.model_version}, rev {st.stable.revision})"
        if st.stable
        else "-"
    )
    lines.append(f"  phase   {st.phase}" + (f": {st.message}" if st.message else ""))
    lines.append(f"  stable  {stable}")
    if st.canary is not None:
        c = st.canary
        lines.append(
            f"  canary  {c.version} ({c.model_version}, rev {c.revision}), weight {c.weight}%"
            + (f", mirror {c.mirror}%" if c.mirror else "")
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
            lines.append(
                f"  rev {h.revision:<3} {h.model_version:<24} {h.outcome:<11} {_clock(h.time)}"
                + (f"  {h.reason}" if h.reason else "")
            )
    return "\n".join(lines)
