"""The decision record: what the governor decided for one event, and why.

This shape is the contract of the decision log, the outbound events and every API.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, model_validator
from pydantic_core import core_schema

from shared.domain.explanation import Explanation, RuleCheck, format_utc
from shared.domain.interaction import Channel, Outcome

if TYPE_CHECKING:  # annotations only: reading decisions does not need the event contract
    from shared.domain.events import InteractionClosed

__all__ = ["Explanation", "RuleCheck", "format_utc"]  # and everything defined below

# The four slots of a pydantic model instance, set directly (what model_construct sets, for less).
set_model_dict = BaseModel.__dict__["__dict__"].__set__
set_model_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
set_model_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
set_model_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _utc_text(value: datetime) -> str:
    return format_utc(value)


class _AsUtcText:
    """Serializes a datetime as its format_utc text: what PlainSerializer(_utc_text, return_type=str)
    does, said with pydantic-core's schema, as pydantic documents for custom types. PlainSerializer's
    module costs every cold start that reads a decision ~2 ms to import (issue 12, goal 3)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        schema: dict[str, Any] = {**handler(source)}
        schema["serialization"] = core_schema.plain_serializer_function_ser_schema(
            _utc_text, info_arg=False, return_schema=core_schema.str_schema()
        )
        return cast("core_schema.CoreSchema", schema)


UtcDatetime = Annotated[datetime, _AsUtcText()]
_M = TypeVar("_M", bound=BaseModel)


class Action(StrEnum):
    SURVEY = "survey"
    CALLBACK = "callback"
    NONE = "none"


class Reason(StrEnum):
    """Stable reason codes; the first one in a decision is the deciding reason (docs/reasons.md)."""

    SURVEY_ELIGIBLE = "SURVEY_ELIGIBLE"
    CALLBACK_UNRESOLVED = "CALLBACK_UNRESOLVED"
    CALLBACK_ESCALATED = "CALLBACK_ESCALATED"
    CALLBACK_NEGATIVE_SENTIMENT = "CALLBACK_NEGATIVE_SENTIMENT"
    CALLBACK_REPEAT_CONTACT = "CALLBACK_REPEAT_CONTACT"
    CALLBACK_REOPENED = "CALLBACK_REOPENED"
    QUIET_HOURS_DEFERRED = "QUIET_HOURS_DEFERRED"
    ALREADY_FOLLOWED_UP = "ALREADY_FOLLOWED_UP"
    OPTED_OUT = "OPTED_OUT"
    ABANDONED_INTERACTION = "ABANDONED_INTERACTION"
    STALE_EVENT = "STALE_EVENT"
    CALLBACK_DISABLED = "CALLBACK_DISABLED"
    CALLBACK_CAP_REACHED = "CALLBACK_CAP_REACHED"
    SURVEY_DISABLED = "SURVEY_DISABLED"
    SEGMENT_EXCLUDED = "SEGMENT_EXCLUDED"
    SHORT_INTERACTION = "SHORT_INTERACTION"
    NOT_SAMPLED = "NOT_SAMPLED"
    SURVEY_CAP_REACHED = "SURVEY_CAP_REACHED"
    CONTACT_COOLDOWN = "CONTACT_COOLDOWN"
    CONTACT_CAP_REACHED = "CONTACT_CAP_REACHED"
    SURVEY_COOLDOWN_AFTER_RESPONSE = "SURVEY_COOLDOWN_AFTER_RESPONSE"
    SURVEY_FATIGUE = "SURVEY_FATIGUE"
    SURVEY_DELAYED = "SURVEY_DELAYED"


class State(StrEnum):
    """Where a decision is in its lifecycle: an approval is held (`pending`) until its send time,
    then re-checked and `released` to the sending systems or `cancelled`; a `none` is `suppressed`."""

    SUPPRESSED = "suppressed"
    PENDING = "pending"
    RELEASED = "released"
    CANCELLED = "cancelled"


class CancelReason(StrEnum):
    """Why a pending follow-up was cancelled (docs/reasons.md)."""

    SUPERSEDED_BY_NEWER_INTERACTION = "SUPERSEDED_BY_NEWER_INTERACTION"
    OPTED_OUT = "OPTED_OUT"
    EXPIRED = "EXPIRED"
    POLICY_FORBIDS = "POLICY_FORBIDS"


class DecisionInput(BaseModel):
    """The event fields the engine used, kept so a decision can be explained and replayed."""

    # defer_build (here and below): schemas are built at first use, not when a function is imported.
    model_config = ConfigDict(frozen=True, defer_build=True)

    channel: Channel
    closed_at: UtcDatetime
    outcome: Outcome
    handle_seconds: int | None = None
    contact_attempts: int | None = None
    reopen_count: int | None = None
    sentiment: float | None = None
    customer_timezone: str | None = None
    segment: str | None = None
    brand: str | None = None

    @classmethod
    def of(cls, event: InteractionClosed) -> DecisionInput:
        return input_of(event.__dict__)


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    decision_id: str
    event_id: str
    interaction_id: str
    customer_id: str
    action: Action
    reasons: tuple[Reason, ...]
    # Sentences are rendered when read (shared.domain.explanation); it dumps as a list of RuleCheck.
    explanation: Explanation
    policy_version: int
    policy_scope: str = "default"  # "default", or the scope of the override that applied, e.g. "segment=vip"
    send_at: UtcDatetime | None
    decided_at: UtcDatetime
    input: DecisionInput
    # The lifecycle. Entries logged before it existed carry none of these: the validator below
    # derives them (a none was suppressed, an approval released at once, both when decided).
    state: State
    state_reason: CancelReason | None = None
    state_changed_at: UtcDatetime
    # Decision ids of the pending follow-ups (of older interactions) this decision cancelled.
    supersedes: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _lifecycle_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("state" not in data or "state_changed_at" not in data):
            data = dict(data)
            if "state" not in data:
                data["state"] = State.SUPPRESSED if str(data.get("action")) == Action.NONE else State.RELEASED
            data.setdefault("state_changed_at", data.get("decided_at"))
        return data

    def with_state(self, state: State, reason: CancelReason | None, at: datetime) -> Decision:
        return self.model_copy(update={"state": state, "state_reason": reason, "state_changed_at": at})

    @property
    def reason(self) -> Reason:
        return self.reasons[0]

    @property
    def approved(self) -> bool:
        return self.action is not Action.NONE


def constructed(model: type[_M], values: dict[str, Any], fields: set[str] | None = None) -> _M:
    """`model` holding `values`, which are already valid and typed as its fields (every field
    given, in order): what model_construct does, without its per-field loop. The engine builds
    its decision this way; validating values it made itself would cost more than deciding.

    `fields`: the set of every field name, shared by the instances (pydantic changes a frozen
    model's fields set only on a copy, and nothing here changes it)."""
    instance = object.__new__(model)
    set_model_dict(instance, values)
    set_model_fields_set(instance, set(values) if fields is None else fields)
    set_model_extra(instance, None)
    set_model_private(instance, None)
    return instance


_ALL_INPUT_FIELDS = set(DecisionInput.model_fields)


def input_of(given: dict[str, Any]) -> DecisionInput:
    """DecisionInput.of an event, given its fields (its __dict__). They are valid already, and
    typed as here: copied, not dumped and validated (as `constructed`, written out: the engine
    makes one per decision)."""
    made = object.__new__(DecisionInput)
    set_model_dict(
        made,
        {
            "channel": given["channel"],
            "closed_at": given["closed_at"],
            "outcome": given["outcome"],
            "handle_seconds": given["handle_seconds"],
            "contact_attempts": given["contact_attempts"],
            "reopen_count": given["reopen_count"],
            "sentiment": given["sentiment"],
            "customer_timezone": given["customer_timezone"],
            "segment": given["segment"],
            "brand": given["brand"],
        },
    )
    set_model_fields_set(made, _ALL_INPUT_FIELDS)
    set_model_extra(made, None)
    set_model_private(made, None)
    return made


ALL_DECISION_FIELDS = set(Decision.model_fields)


# Lower-case base32 (RFC 4648) letters, by pairs: a 10-bit number -> its two letters.
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_B32_PAIRS = tuple(a + b for a in _B32 for b in _B32)
# Every 5 bytes of a digest are 4 pairs, each spanning two of them: (8 + 2 bits), (6 + 4), (4 + 6)
# and (2 + 8). A table per kind, indexed by the two parts, reads a pair with byte-sized numbers only.
_PAIRS_8_2 = tuple(tuple(_B32_PAIRS[(a << 2) | b] for b in range(4)) for a in range(256))
_PAIRS_6_4 = tuple(tuple(_B32_PAIRS[(a << 4) | b] for b in range(16)) for a in range(64))
_PAIRS_4_6 = tuple(tuple(_B32_PAIRS[(a << 6) | b] for b in range(64)) for a in range(16))
_PAIRS_2_8 = tuple(tuple(_B32_PAIRS[(a << 8) | b] for b in range(256)) for a in range(4))
_PAIRS_8 = tuple(_B32_PAIRS[a << 2] for a in range(256))  # the last byte, padded with two zero bits
# The JSON array json.dumps writes for two texts of printable ASCII without a quote or backslash.
_PLAIN_KEY = re.compile(r'\["[ !#-\[\]-~]*","[ !#-\[\]-~]*"\]')


def _short_sha256() -> Callable[[bytes], Any]:
    """sha256 for short inputs: CPython's own implementation (the same digest) starts faster than
    OpenSSL's, which hashlib prefers; hashlib's where the interpreter has no such module."""
    for name in ("_sha256", "_sha2"):
        try:
            found: Callable[[bytes], Any] = importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
        return found
    import hashlib  # noqa: PLC0415 - only without those modules: hashlib (OpenSSL) costs every cold start

    return hashlib.sha256


sha256 = _short_sha256()


def decision_id_for(customer_id: str, event_id: str) -> str:
    """Deterministic, so every retry of an event names the same decision (consumers dedupe on it).

    Scoped by customer: an event_id is the producer's key, and two customers' events that happen
    to share one must never name (and so swallow, or read) each other's decision.

    The id is "dcn_" and the lower-case unpadded base32 of the first 16 bytes of the sha256 of
    the JSON array [customer_id, event_id] without spaces. Written out by hand: json.dumps and
    base64.b32encode cost more than the rest of a decision (the same text:
    tests/unit/test_engine_shortcuts.py)."""
    key = f'["{customer_id}","{event_id}"]'
    if not _PLAIN_KEY.fullmatch(key):
        key = json.dumps([customer_id, event_id], separators=(",", ":"))
    b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15 = sha256(key.encode()).digest()[:16]
    a, b, c, d = _PAIRS_8_2, _PAIRS_6_4, _PAIRS_4_6, _PAIRS_2_8
    return (
        f"dcn_{a[b0][b1 >> 6]}{b[b1 & 63][b2 >> 4]}{c[b2 & 15][b3 >> 2]}{d[b3 & 3][b4]}"
        f"{a[b5][b6 >> 6]}{b[b6 & 63][b7 >> 4]}{c[b7 & 15][b8 >> 2]}{d[b8 & 3][b9]}"
        f"{a[b10][b11 >> 6]}{b[b11 & 63][b12 >> 4]}{c[b12 & 15][b13 >> 2]}{d[b13 & 3][b14]}{_PAIRS_8[b15]}"
    )


def fingerprint_of(event: InteractionClosed) -> str:
    """sha256 of the event's canonical JSON: what a repeat of the same event_id must match.

    Canonical: keys sorted, absent and null alike, closed_at as its UTC instant, so the same event
    sent as a queue message, to POST /decide or from Amazon Connect has one fingerprint."""
    content = event.model_dump(mode="json", exclude_none=True)
    content["closed_at"] = format_utc(event.closed_at)
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest: str = sha256(text.encode()).hexdigest()  # hashlib's digest, without importing hashlib
    return digest
