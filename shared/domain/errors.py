"""Domain errors. Each carries its HTTP status, so APIs map them in one place."""

from __future__ import annotations

import re
from typing import Any

# A field name is echoed only when short and plain: the sender controls unknown ones.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def field_problems(error: Any, prefix: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """A pydantic ValidationError as [{"field": "a.b.0", "message": ...}], never with the
    offending values (they may be personal data)."""
    return [
        {"field": field_path([*prefix, *(str(part) for part in problem["loc"])]), "message": problem["msg"]}
        for problem in error.errors(include_url=False, include_input=False, include_context=False)
    ]


def field_path(parts: list[str]) -> str:
    """a.b.0, with a last part that is not a short plain name (an unknown key) left unnamed."""
    if parts and not _PLAIN_NAME.fullmatch(parts[-1]):
        parts = [*parts[:-1], "<unknown field>"]
    return ".".join(parts) or "body"


class GovernorError(Exception):
    status = 500
    code = "INTERNAL"


class ConfigurationError(GovernorError):
    code = "CONFIGURATION"


class InvalidInput(GovernorError):
    """Input that can never succeed: refused, never retried."""

    status = 400
    code = "INVALID_INPUT"

    def __init__(self, message: str, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or []


class TransientFailure(GovernorError):
    """Worth retrying later: throttling, timeouts, contention."""

    status = 503
    code = "TRY_AGAIN"


class LedgerContention(TransientFailure):
    """The customer's ledger kept changing under us; SQS (or the caller) retries later."""


class PublishFailed(TransientFailure):
    """A committed decision could not be published yet; redelivery publishes it again."""


class IdempotencyKeyReused(GovernorError):
    """The event_id was already used for an event with different content: never decided, never
    answered with the other event's decision; the sender must use a new event_id."""

    status = 409
    code = "IDEMPOTENCY_KEY_REUSED"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.fields = [{"field": "event_id", "message": "was already used for a different event; send a new event_id"}]


class NotFound(GovernorError):
    status = 404
    code = "NOT_FOUND"


class PreconditionRequired(GovernorError):
    """A change must say which version it was based on (If-Match), so nobody overwrites blindly."""

    status = 428
    code = "PRECONDITION_REQUIRED"


class VersionConflict(GovernorError):
    """Someone else changed it (a policy, a customer's opt-outs) since the version this change was
    based on (If-Match)."""

    status = 412
    code = "VERSION_CONFLICT"

    def __init__(self, message: str, current_version: int | str) -> None:
        super().__init__(message)
        self.current_version = current_version
