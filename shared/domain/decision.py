"""The decision record: what the governor decided for one event, and why.

This shape is the contract of the decision log, the outbound events and every API.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import struct
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer, model_validator

from shared.domain.events import Channel, InteractionClosed, Outcome
from shared.domain.explanation import Explanation, RuleCheck, format_utc

__all__ = ["Explanation", "RuleCheck", "format_utc"]  # and everything defined below

_setattr = object.__setattr__


def _utc_text(value: datetime) -> str:
    return format_utc(value)


UtcDatetime = Annotated[datetime, PlainSerializer(_utc_text, return_type=str)]
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
        # The event's fields are valid already (and typed as here): copied, not dumped and validated
        # (as `constructed` does, written out: the engine makes one per decision).
        given = event.__dict__
        made = cls.__new__(cls)
        _setattr(
            made,
            "__dict__",
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
        _setattr(made, "__pydantic_fields_set__", _ALL_INPUT_FIELDS)
        _setattr(made, "__pydantic_extra__", None)
        _setattr(made, "__pydantic_private__", None)
        return made


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
    instance = model.__new__(model)
    _setattr(instance, "__dict__", values)
    _setattr(instance, "__pydantic_fields_set__", set(values) if fields is None else fields)
    _setattr(instance, "__pydantic_extra__", None)
    _setattr(instance, "__pydantic_private__", None)
    return instance


_ALL_INPUT_FIELDS = set(DecisionInput.model_fields)
ALL_DECISION_FIELDS = set(Decision.model_fields)


# Lower-case base32 (RFC 4648) letters, by pairs: a 10-bit number -> its two letters.
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_B32_PAIRS = tuple(a + b for a in _B32 for b in _B32)
# The JSON array json.dumps writes for two texts of printable ASCII without a quote or backslash.
_PLAIN_KEY = re.compile(r'\["[ !#-\[\]-~]*","[ !#-\[\]-~]*"\]')
_TWO_WORDS = struct.Struct(">QQ")


def _short_sha256() -> Callable[[bytes], Any]:
    """sha256 for short inputs: CPython's own implementation (the same digest) starts faster than
    OpenSSL's, which hashlib prefers; hashlib's where the interpreter has no such module."""
    for name in ("_sha256", "_sha2"):
        try:
            found: Callable[[bytes], Any] = importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
        return found
    return hashlib.sha256


sha256 = _short_sha256()


def decision_id_for(customer_id: str, event_id: str) -> str:
    """Deterministic, so every retry of an event names the same decision (consumers dedupe on it).

    Scoped by customer: an event_id is the producer's key, and two customers' events that happen
    to share one must never name (and so swallow, or read) each other's decision.

    The id is "dcn_" and the lower-case unpadded base32 of the first 16 bytes of the sha256 of
    the JSON array [customer_id, event_id] without spaces. Written out by hand: json.dumps and
    base64.b32encode cost more than the rest of a decision (same text: tests/unit/test_engine.py)."""
    key = f'["{customer_id}","{event_id}"]'
    if not _PLAIN_KEY.fullmatch(key):
        key = json.dumps([customer_id, event_id], separators=(",", ":"))
    hi, lo = _TWO_WORDS.unpack_from(sha256(key.encode()).digest())
    # The 128 bits, padded with two zero bits as base32 pads them, are 13 pairs of letters:
    # six from the high word, one across both, six from the low word.
    p = _B32_PAIRS
    return (
        f"dcn_{p[hi >> 54]}{p[(hi >> 44) & 1023]}{p[(hi >> 34) & 1023]}{p[(hi >> 24) & 1023]}"
        f"{p[(hi >> 14) & 1023]}{p[(hi >> 4) & 1023]}{p[((hi & 15) << 6) | (lo >> 58)]}"
        f"{p[(lo >> 48) & 1023]}{p[(lo >> 38) & 1023]}{p[(lo >> 28) & 1023]}{p[(lo >> 18) & 1023]}"
        f"{p[(lo >> 8) & 1023]}{p[(lo & 255) << 2]}"
    )


def fingerprint_of(event: InteractionClosed) -> str:
    """sha256 of the event's canonical JSON: what a repeat of the same event_id must match.

    Canonical: keys sorted, absent and null alike, closed_at as its UTC instant, so the same event
    sent as a queue message, to POST /decide or from Amazon Connect has one fingerprint."""
    content = event.model_dump(mode="json", exclude_none=True)
    content["closed_at"] = format_utc(event.closed_at)
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
