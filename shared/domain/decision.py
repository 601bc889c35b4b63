"""The decision record: what the governor decided for one event, and why.

This shape is the contract of the decision log, the outbound events and every API.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from shared.domain.events import Channel, InteractionClosed, Outcome


def _utc_text(value: datetime) -> str:
    return format_utc(value)


def format_utc(value: datetime) -> str:
    """Fixed-width UTC text (sorts like the instant it names): 2026-11-23T10:00:00.000000Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


UtcDatetime = Annotated[datetime, PlainSerializer(_utc_text, return_type=str)]


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


class RuleCheck(BaseModel):
    """One rule the engine evaluated, with the figures behind its verdict."""

    model_config = ConfigDict(frozen=True)

    rule: str
    passed: bool
    message: str
    figures: dict[str, Any] = Field(default_factory=dict)


class DecisionInput(BaseModel):
    """The event fields the engine used, kept so a decision can be explained and replayed."""

    model_config = ConfigDict(frozen=True)

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
        return cls.model_validate(event.model_dump(include=set(cls.model_fields)))


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision_id: str
    event_id: str
    interaction_id: str
    customer_id: str
    action: Action
    reasons: tuple[Reason, ...]
    explanation: tuple[RuleCheck, ...]
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


def decision_id_for(customer_id: str, event_id: str) -> str:
    """Deterministic, so every retry of an event names the same decision (consumers dedupe on it).

    Scoped by customer: an event_id is the producer's key, and two customers' events that happen
    to share one must never name (and so swallow, or read) each other's decision."""
    key = json.dumps([customer_id, event_id], separators=(",", ":"))
    digest = hashlib.sha256(key.encode()).digest()[:16]
    return "dcn_" + base64.b32encode(digest).decode().rstrip("=").lower()


def fingerprint_of(event: InteractionClosed) -> str:
    """sha256 of the event's canonical JSON: what a repeat of the same event_id must match.

    Canonical: keys sorted, absent and null alike, closed_at as its UTC instant, so the same event
    sent as a queue message, to POST /decide or from Amazon Connect has one fingerprint."""
    content = event.model_dump(mode="json", exclude_none=True)
    content["closed_at"] = format_utc(event.closed_at)
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
