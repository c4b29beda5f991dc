"""Who approved a version and who issued each command: the audit vocabulary.

The chart's ValidatingAdmissionPolicy is what makes these names true: it admits an
approval only in the requesting user's own name (and groups), and a command token
only when it ends with ` by=` and that user's name. The operator reads the names
back from the annotations; without the policy they are claims, not facts.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from coalmine.api.base import ApiModel

APPROVED_BY_ANNOTATION = "coalmine.dev/approved-by"
"""Set on a ModelVersion by whoever approves it for production traffic: their user name."""
APPROVED_GROUPS_ANNOTATION = "coalmine.dev/approved-groups"
"""Comma-separated groups of the approver, for strategies whose `approverGroups` counts."""

AUTHOR_MARK = " by="
"""Separates a command token from its author: `<nonce> [options] by=<user name>`."""

CommandName = Literal["promote", "abort", "retry", "undo"]
UserName = Annotated[str, StringConstraints(min_length=1, max_length=253)]
GroupName = Annotated[str, StringConstraints(min_length=1, max_length=253)]
MAX_GROUPS = 32
MAX_COMMAND_RECORDS = 16


class Approval(ApiModel):
    """An approval as the ModelVersion carried it."""

    by: UserName
    groups: list[GroupName] = Field(default_factory=list, max_length=MAX_GROUPS)
    """The approver's groups that they chose to state (each one checked at admission)."""

    def text(self) -> str:
        """ "approved by alice (groups ml-leads)": for events, history and reports."""
        groups = f" (groups {', '.join(self.groups)})" if self.groups else ""
        return f"approved by {self.by}{groups}"


class CommandRecord(ApiModel):
    """One command the operator acted on."""

    command: CommandName
    by: UserName | None = None
    """Who issued it (absent: a token without ` by=`, e.g. written by hand)."""
    time: AwareDatetime

    def text(self) -> str:
        """ "promote by carol at 2026-12-01 12:40:02": for history and reports."""
        return (
            f"{self.command} by {self.by or 'an unnamed author'} at {self.time:%Y-%m-%d %H:%M:%S}"
        )


def approval_of(annotations: dict[str, str]) -> Approval | None:
    """The approval a ModelVersion's annotations state, if any."""
    by = annotations.get(APPROVED_BY_ANNOTATION, "").strip()
    if not by:
        return None
    groups = [g.strip() for g in annotations.get(APPROVED_GROUPS_ANNOTATION, "").split(",")]
    return Approval(by=by[:253], groups=[g[:253] for g in groups if g][:MAX_GROUPS])


def split_token(token: str) -> tuple[str, str | None]:
    """A command token's options part and its author (None when it names none)."""
    options, mark, author = token.partition(AUTHOR_MARK)
    return options, (author.strip()[:253] or None) if mark else None


def with_author(token: str, user: str) -> str:
    """The token as the CLI writes it, ending with its author's name."""
    return f"{token}{AUTHOR_MARK}{user}"
