"""CLI commands: a fresh token in an annotation asks for one action.

A token is free text chosen by the CLI (a timestamp, a nonce); the operator acts
once per token and remembers it in status.handledCommands. Whitespace-separated
words in the token carry options: `full` on promote skips every remaining step,
`revision=N` on undo names the revision to return to. The CLI ends the token with
` by=<user name>`: the author, which the chart's admission policy verifies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from coalmine.api.deployment import COMMAND_ANNOTATIONS
from coalmine.api.governance import split_token

_REVISION = re.compile(r"(?:^|\s)revision=(\d+)(?:\s|$)")


def new_commands(handled: Mapping[str, str], current: Mapping[str, str]) -> dict[str, str]:
    """Commands whose token differs from the one last acted on."""
    return {
        name: token
        for name, token in current.items()
        if name in COMMAND_ANNOTATIONS and token and handled.get(name) != token
    }


def is_full_promote(token: str) -> bool:
    return "full" in split_token(token)[0].split()


def undo_revision(token: str) -> int | None:
    """The revision an undo token names, if any."""
    match = _REVISION.search(split_token(token)[0])
    return int(match.group(1)) if match else None
