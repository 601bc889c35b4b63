"""The InteractionClosed event contract: the pydantic model upstream events must satisfy.

The JSON Schema in infra/interaction-closed.schema.json is generated from these models
(`make schema`) and a test fails when the two drift apart.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

# The enums live apart so the decision record can name them without this module (see there).
from shared.domain.interaction import Channel, Outcome

__all__ = ["Channel", "Outcome"]  # and everything defined below

MAX_ATTRIBUTES_BYTES = 4096
# Events stamped further ahead than this are refused: a clock that far off upstream
# would otherwise let an event dodge the staleness rule.
MAX_CLOCK_SKEW = timedelta(minutes=15)

# Opaque ids: printable ASCII only, so no look-alike unicode, control or bidi characters
# reach keys, logs or downstream tools.
# The published patterns end in `$(?!\n)` because some validators (Python's re among them) let `$`
# match before a trailing newline; the code uses fullmatch. [0-9], not \d: no full-width digits.
_ID_BODY = r"[A-Za-z0-9][A-Za-z0-9._:/#=+-]*"
ID_PATTERN = rf"^{_ID_BODY}$(?!\n)"
_RFC3339_BODY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
RFC3339_PATTERN = rf"^{_RFC3339_BODY}$(?!\n)"
_RFC3339 = re.compile(_RFC3339_BODY)
# What people type as phone numbers: +44 20 7946 0000, (555) 123-4567, 555-123-4567, 555.123.4567.
_PHONE_LIKE = (
    re.compile(r"\+[0-9][0-9 ().-]{6,}"),
    re.compile(r"\([0-9]{2,4}\)[0-9 .-]{5,}"),
    re.compile(r"[0-9]{3}[ .-][0-9]{3}[ .-][0-9]{4}"),
)
MAX_ATTRIBUTE_DEPTH = 32


def _parse_rfc3339(value: Any) -> datetime:
    problem = "must be an RFC 3339 timestamp with an offset, e.g. 2026-11-23T10:15:00Z"
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and _RFC3339.fullmatch(value):
        try:
            parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
        except ValueError:
            raise ValueError(problem) from None  # Python's own message would echo the value
    else:
        raise ValueError(problem)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("must carry a UTC offset, e.g. 2026-11-23T10:15:00+01:00")
    try:
        parsed.astimezone(UTC)  # 0001-01-01T00:00+01:00 has no UTC instant
    except OverflowError:
        raise ValueError(problem) from None
    return parsed


Rfc3339 = Annotated[
    datetime,
    BeforeValidator(_parse_rfc3339),
    Field(json_schema_extra={"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}),
]
_ID = re.compile(_ID_BODY)


def _integral(value: Any) -> Any:
    """JSON has one number type: 3.0 is the integer 3 (as JSON Schema says); 3.5, "3" and true are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _check_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(
            "may contain only ASCII letters, digits and . _ : / # = + -, and must start with a letter or digit"
        )
    return value


def _check_customer_id(value: str) -> str:
    if "@" in value:
        raise ValueError("looks like an e-mail address; send the opaque customer id instead")
    if any(pattern.fullmatch(value) for pattern in _PHONE_LIKE):
        raise ValueError("looks like a phone number; send the opaque customer id instead")
    return _check_id(value)


_ID_SCHEMA = {"pattern": ID_PATTERN}
OpaqueId = Annotated[str, Field(min_length=1, max_length=128, json_schema_extra=_ID_SCHEMA), AfterValidator(_check_id)]
CustomerId = Annotated[
    str, Field(min_length=1, max_length=128, json_schema_extra=_ID_SCHEMA), AfterValidator(_check_customer_id)
]
Label = Annotated[str, Field(min_length=1, max_length=64, json_schema_extra=_ID_SCHEMA), AfterValidator(_check_id)]


class InteractionClosed(BaseModel):
    """The `detail` of an InteractionClosed event."""

    # defer_build: the schema is built at the first validation, not when a function is imported.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)

    event_id: OpaqueId = Field(description="Idempotency key: the same event_id always yields the same decision.")
    interaction_id: OpaqueId
    customer_id: CustomerId = Field(description="An opaque id; never an e-mail address or a phone number.")
    channel: Annotated[Channel, Field(strict=False)]
    closed_at: Rfc3339
    outcome: Annotated[Outcome, Field(strict=False)]
    handle_seconds: Annotated[int, Field(ge=0, le=7 * 24 * 3600), BeforeValidator(_integral)] | None = None
    contact_attempts: Annotated[int, Field(ge=1, le=1000), BeforeValidator(_integral)] | None = Field(
        default=None, description="How many times the customer reached out about this issue."
    )
    reopen_count: Annotated[int, Field(ge=0, le=1000), BeforeValidator(_integral)] | None = None
    sentiment: float | None = Field(default=None, ge=-1, le=1)
    customer_timezone: str | None = Field(default=None, max_length=64, description="An IANA time zone name.")
    segment: Label | None = None
    brand: Label | None = None
    attributes: dict[str, Any] | None = Field(
        default=None, description=f"Free-form context, at most {MAX_ATTRIBUTES_BYTES} bytes serialized."
    )

    def clock_problem(self, now: datetime) -> str | None:
        """Checked against the decider's clock, outside the model, which stays clock-free."""
        if self.closed_at - now > MAX_CLOCK_SKEW:
            return "is in the future; send the time the interaction actually closed"
        return None

    @field_validator("customer_timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value not in known_timezones():
            raise ValueError("is not an IANA time zone name, e.g. Europe/Paris")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError("is not an IANA time zone name, e.g. Europe/Paris") from error
        return value

    @field_validator("attributes")
    @classmethod
    def _small_attributes(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        if _depth(value) > MAX_ATTRIBUTE_DEPTH:
            raise ValueError(f"is nested more than {MAX_ATTRIBUTE_DEPTH} levels deep; flatten it")
        try:
            size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
        except (ValueError, TypeError) as error:
            raise ValueError("must be a JSON object of plain values") from error
        if size > MAX_ATTRIBUTES_BYTES:
            raise ValueError(f"is {size} bytes serialized; at most {MAX_ATTRIBUTES_BYTES} are allowed")
        return value


def _depth(value: Any) -> int:
    """Nesting depth, iteratively: a hostile document cannot exhaust the stack here."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_ATTRIBUTE_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


_TIMEZONES: frozenset[str] | None = None


def known_timezones() -> frozenset[str]:
    """The IANA names shipped in the pinned tzdata package: the same set on every host and in Lambda
    (zoneinfo.available_timezones() would add whatever the host has, such as "localtime")."""
    global _TIMEZONES
    if _TIMEZONES is None:
        listing = resources.files("tzdata").joinpath("zones").read_text()
        _TIMEZONES = frozenset(line.strip() for line in listing.splitlines() if line.strip())
    return _TIMEZONES


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of the event detail."""
    schema = InteractionClosed.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://followup-governor/schemas/interaction-closed.json"
    return schema
