"""The InteractionClosed event contract: the pydantic model upstream events must satisfy.

The JSON Schema in infra/interaction-closed.schema.json is generated from these models
(`make schema`) and a test fails when the two drift apart.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

MAX_ATTRIBUTES_BYTES = 4096
# Events stamped further ahead than this are refused: a clock that far off upstream
# would otherwise let an event dodge the staleness rule.
MAX_CLOCK_SKEW = timedelta(minutes=15)

# Opaque ids: printable ASCII only, so no look-alike unicode, control or bidi characters
# reach keys, logs or downstream tools.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/#=+-]*$"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_PHONE_LIKE = re.compile(r"^\+?[\d\s().-]{7,}$")


class Channel(StrEnum):
    PHONE = "phone"
    CHAT = "chat"
    EMAIL = "email"
    WEB = "web"
    SOCIAL = "social"
    IN_PERSON = "in_person"


class Outcome(StrEnum):
    RESOLVED = "resolved"
    UNRESOLVED = "unresolved"
    ESCALATED = "escalated"
    ABANDONED = "abandoned"


def _parse_rfc3339(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and _RFC3339.match(value):
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    else:
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2026-11-23T10:15:00Z")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("must carry a UTC offset, e.g. 2026-11-23T10:15:00+01:00")
    return parsed


Rfc3339 = Annotated[
    datetime,
    BeforeValidator(_parse_rfc3339),
    Field(json_schema_extra={"type": "string", "format": "date-time"}),
]
_ID = re.compile(ID_PATTERN)


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            "may contain only ASCII letters, digits and . _ : / # = + -, and must start with a letter or digit"
        )
    return value


def _check_customer_id(value: str) -> str:
    if "@" in value:
        raise ValueError("looks like an e-mail address; send the opaque customer id instead")
    if _PHONE_LIKE.match(value) and not value.isdigit():
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

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    event_id: OpaqueId = Field(description="Idempotency key: the same event_id always yields the same decision.")
    interaction_id: OpaqueId
    customer_id: CustomerId = Field(description="An opaque id; never an e-mail address or a phone number.")
    channel: Annotated[Channel, Field(strict=False)]
    closed_at: Rfc3339
    outcome: Annotated[Outcome, Field(strict=False)]
    handle_seconds: int | None = Field(default=None, ge=0, le=7 * 24 * 3600)
    contact_attempts: int | None = Field(
        default=None, ge=1, le=1000, description="How many times the customer reached out about this issue."
    )
    reopen_count: int | None = Field(default=None, ge=0, le=1000)
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
        if value not in _timezones():
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
        try:
            size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        except (RecursionError, ValueError, TypeError) as error:
            raise ValueError("must be a JSON object of plain values") from error
        if size > MAX_ATTRIBUTES_BYTES:
            raise ValueError(f"is {size} bytes serialized; at most {MAX_ATTRIBUTES_BYTES} are allowed")
        return value


_TIMEZONES: frozenset[str] | None = None


def _timezones() -> frozenset[str]:
    global _TIMEZONES
    if _TIMEZONES is None:
        _TIMEZONES = frozenset(available_timezones())
    return _TIMEZONES


class InteractionClosedEnvelope(EventBridgeModel):
    """What the decide queue holds: the EventBridge envelope around the detail.

    `account` is optional because moto's EventBridge leaves it out; nothing here needs it.
    """

    account: str | None = None  # type: ignore[assignment]
    detail_type: Literal["InteractionClosed"] = Field(..., alias="detail-type")
    detail: InteractionClosed  # type: ignore[assignment]


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of the event detail."""
    schema = InteractionClosed.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://followup-governor/schemas/interaction-closed.json"
    return schema
