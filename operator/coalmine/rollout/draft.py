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
from coalmine.api.governance import (
    MAX_COMMAND_RECORDS,
    CommandName,
    CommandRecord,
    split_token,
)
from coalmine.api.strategy import RolloutStrategySpec
from coalmine.resources.hpa import DEFAULT_SCALE_DOWN_WINDOW
from coalmine.rollout import reasons
from coalmine.rollout.commands import new_commands
from coalmine.rollout.decision import Event
from coalmine.rollout.observation import Observation
from coalmine.rollout.revision import desired_pin
from coalmine.rollout.schedule import counted_from

DEFAULTS = RolloutStrategySpec()
"""Limits used when the strategy cannot be read (e.g. the delay after a rollback)."""

HistoryOutcome = Literal["Promoted", "RolledBack", "Aborted", "Superseded"]
MESSAGE_LIMIT = 4096
"""Longest status message the CRD accepts; termination messages can be that long alone."""


def approval_message(d: Draft) -> str:
    """What the rollout waits for, and the command that gives it."""
    name = d.obs.target.metadata.name if d.obs.target else d.md.spec.model_version
    groups = d.strategy.approver_groups
    who = f" from a member of {' or '.join(groups)}" if groups else ""
    return (
        f"waiting for approval{who}: `coalmine approve {name}` (annotation"
        " coalmine.dev/approved-by on the ModelVersion)"
    )


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
        draft.note_approval()
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

    def counted_from(self, start: datetime) -> datetime:
        """Where a progress deadline that began at `start` runs from (schedule.counted_from)."""
        return counted_from(start, self.obs.watching_since)

    @property
    def strategy(self) -> RolloutStrategySpec:
        return self.obs.strategy or DEFAULTS

    @property
    def in_rollout(self) -> bool:
        return self.status.canary is not None and self.status.current_step_index is not None

    @property
    def approval_required(self) -> bool:
        return self.strategy.require_approval or bool(self.strategy.approver_groups)

    @property
    def approved(self) -> bool:
        """The target's approval counts: any approver, or one stating a required group."""
        if not self.approval_required:
            return True
        approval = self.obs.target.approval if self.obs.target is not None else None
        wanted = self.strategy.approver_groups
        return approval is not None and (not wanted or bool(set(wanted) & set(approval.groups)))

    def note_approval(self) -> None:
        """The canary takes its ModelVersion's approval as it stands (a first version takes
        it when it is served); a new approver is announced once."""
        target = self.obs.target
        variant = self.status.canary if self.in_rollout else None
        if target is None or variant is None or variant.model_version != target.metadata.name:
            return
        approval = target.approval
        if approval == variant.approval:
            return
        variant.approval = approval
        if approval is not None:
            self.emit("Normal", reasons.APPROVED, f"{variant.version} {approval.text()}")

    def acted(self, command: CommandName, token: str) -> str:
        """Remember that `command` was acted on, for the next history entry; returns the
        words naming its author for events ("by alice", or "" when it names none)."""
        by = split_token(token)[1]
        self.status.commands = [
            *self.status.commands[-(MAX_COMMAND_RECORDS - 1) :],
            CommandRecord(command=command, by=by, time=self.now),
        ]
        return f"by {by}" if by else ""

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
        """Append how `variant`'s revision ended, with who approved and commanded it."""
        analysis = self.status.last_analysis
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
                approval=variant.approval,
                commands=self.status.commands,
                analysis=analysis if analysis and analysis.revision == variant.revision else None,
            )
        )
        self.status.commands = []

    def end_rollout(self, scale_down_after: int) -> None:
        """Forget the step walk; the canary gets no traffic and goes after the delay. Under an
        HPA, stable is held at its pods for the HPA's scale-down window (status.stableFloor)."""
        st = self.status
        if st.canary is not None:
            st.canary.weight, st.canary.mirror = 0, None
        st.current_step_index = st.step_started_at = st.rollout_started_at = None
        st.step_ready_at = None
        st.analysis_run = None
        st.canary_scale_down_at = self.now + timedelta(seconds=scale_down_after)
        autoscaling, stable = self.md.spec.autoscaling, self.obs.stable
        if autoscaling is not None and stable is not None and stable.replicas:
            window = autoscaling.scale_down_stabilization_seconds
            st.stable_floor = stable.replicas
            st.stable_floor_until = self.now + timedelta(
                seconds=DEFAULT_SCALE_DOWN_WINDOW if window is None else window
            )
