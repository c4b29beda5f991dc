"""The status being decided, with the bookkeeping every transition shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Literal

from coalmine.api.deployment import (
    HistoryEntry,
    ModelDeployment,
    ModelDeploymentStatus,
    Phase,
    Pin,
    VariantStatus,
)
from coalmine.api.strategy import RolloutStrategySpec
from coalmine.rollout.commands import new_commands
from coalmine.rollout.decision import Event
from coalmine.rollout.observation import Observation
from coalmine.rollout.revision import desired_pin

DEFAULTS = RolloutStrategySpec()
"""Limits used when the strategy cannot be read (e.g. the delay after a rollback)."""

HistoryOutcome = Literal["Promoted", "RolledBack", "Aborted", "Superseded"]
MESSAGE_LIMIT = 4096
"""Longest status message the CRD accepts; termination messages can be that long alone."""


def clip(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


@dataclass
class Draft:
    """A mutable copy of the status plus the events and condition reason decided so far."""

    md: ModelDeployment
    obs: Observation
    status: ModelDeploymentStatus
    commands: dict[str, str]
    """New command tokens not yet acted on; what is left at the end was ignored."""
    reason: str = "Unknown"
    """CamelCase reason of the phase, for the conditions."""
    stalled: bool = False
    """It cannot progress without a change from outside (spec, ModelVersion, a human)."""
    events: list[Event] = field(default_factory=list)

    @classmethod
    def start(cls, md: ModelDeployment, obs: Observation) -> Draft:
        status = (md.status or ModelDeploymentStatus()).model_copy(deep=True)
        commands = new_commands(status.handled_commands, obs.commands)
        status.handled_commands = {**status.handled_commands, **commands}
        draft = cls(md, obs, status, commands)
        draft.adopt_unpinned()
        return draft

    @cached_property
    def desired(self) -> Pin | None:
        """The pin the spec asks for now (None: its ModelVersion does not exist)."""
        return desired_pin(self.md, self.obs.target)

    def adopt_unpinned(self) -> None:
        """A status written before revisions had pins: the variant serving the target takes
        the target's pin (its pods are rebuilt once, with the same artifact)."""
        target = self.obs.target
        for variant in (self.status.stable, self.status.canary):
            if (
                variant is not None
                and variant.pin is None
                and target is not None
                and variant.model_version == target.metadata.name
            ):
                variant.pin = self.desired

    @property
    def now(self) -> datetime:
        return self.obs.now

    @property
    def strategy(self) -> RolloutStrategySpec:
        return self.obs.strategy or DEFAULTS

    @property
    def in_rollout(self) -> bool:
        return self.status.canary is not None and self.status.current_step_index is not None

    @property
    def approved(self) -> bool:
        target = self.obs.target
        return not self.strategy.require_approval or (
            target is not None and bool(target.approved_by)
        )

    @property
    def stable_serves(self) -> bool:
        """The stable Deployment should have ready pods (not scaled to zero by spec)."""
        return self.md.spec.stable_replicas != 0

    def take(self, command: str) -> str | None:
        """The new token of `command`, consuming it (acted on once)."""
        return self.commands.pop(command, None)

    def emit(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message[:1024]))

    def set_phase(
        self,
        phase: Phase,
        reason: str,
        message: str,
        *,
        stalled: bool = False,
        event: Literal["Normal", "Warning"] | None = None,
    ) -> None:
        """Set the phase; an `event` is emitted only when phase or message changed since the
        status this reconcile started from, so re-planning never repeats it."""
        message = clip(message)
        before = self.md.status
        changed = before is None or (before.phase, before.message) != (phase, message)
        self.status.phase, self.status.message = phase, message
        self.reason, self.stalled = reason, stalled
        if event is not None and changed:
            self.emit(event, reason, message)

    def record(self, variant: VariantStatus, outcome: HistoryOutcome, reason: str) -> None:
        self.status.history.append(
            HistoryEntry(
                revision=variant.revision,
                model_version=variant.model_version,
                version=variant.version,
                outcome=outcome,
                reason=clip(reason),
                time=self.now,
                pin=variant.pin,
                changes=variant.changes,
            )
        )

    def end_rollout(self, scale_down_after: int) -> None:
        """Forget the step walk; the canary gets no traffic and goes after the delay."""
        st = self.status
        if st.canary is not None:
            st.canary.weight, st.canary.mirror = 0, None
        st.current_step_index = st.step_started_at = st.rollout_started_at = None
        st.analysis_run = None
        st.canary_scale_down_at = self.now + timedelta(seconds=scale_down_after)
