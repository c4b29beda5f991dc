"""Errors that carry their HTTP status, so handlers never guess a code."""

from __future__ import annotations


class ServingError(Exception):
    """A failure answered with ``status`` and ``{"error": message}``."""

    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(ServingError):
    """The client sent something the model cannot take (4xx, never a 500)."""

    status = 400


class NotFound(ServingError):
    """Unknown route, model or version."""

    status = 404


class Overloaded(ServingError):
    """Refused now rather than answered late: the queue's wait is over its budget.

    ``retry_after`` (whole seconds, at least 1) is when the queue should have drained.
    """

    status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LoadError(Exception):
    """The artifact cannot be served; its message is the one-line exit reason."""
