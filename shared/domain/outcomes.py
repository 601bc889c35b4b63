"""The FollowUpOutcome contract: what became of a released follow-up, reported by the sending systems.

The JSON Schema in infra/followup-outcome.schema.json is generated from this model (`make schema`)
and a test fails when the two drift apart.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from shared.domain.decision import Action, format_utc, sha256
from shared.domain.events import MAX_CLOCK_SKEW, OpaqueId, Rfc3339

MIN_SCORE = 0
MAX_SCORE = 10


class OutcomeType(StrEnum):
    SURVEY_RESPONDED = "survey_responded"
    CALLBACK_COMPLETED = "callback_completed"
    DELIVERY_FAILED = "delivery_failed"

    def fits(self, action: Action) -> bool:
        """A survey can be answered, a callback completed; either can fail to be delivered."""
        if self is OutcomeType.SURVEY_RESPONDED:
            return action is Action.SURVEY
        if self is OutcomeType.CALLBACK_COMPLETED:
            return action is Action.CALLBACK
        return action is not Action.NONE


def _unless_type(kind: OutcomeType, *fields: str) -> dict[str, Any]:
    """Schema: these fields are absent or null unless the outcome is of this type."""
    return {
        "if": {"properties": {"type": {"const": kind.value}}, "required": ["type"]},
        "else": {"properties": {name: {"type": "null"} for name in fields}},
    }


# The model's type-dependent rules, said in its JSON Schema too, so senders validating against the
# published schema (or the OpenAPI document) refuse what the model refuses.
_TYPE_RULES: list[Any] = [
    _unless_type(OutcomeType.CALLBACK_COMPLETED, "reached", "resolved"),
    _unless_type(OutcomeType.SURVEY_RESPONDED, "score"),
    {
        "if": {"properties": {"reached": {"const": False}}, "required": ["reached"]},
        "then": {"properties": {"resolved": {"not": {"const": True}}}},
    },
]


class FollowUpOutcome(BaseModel):
    """The `detail` of a FollowUpOutcome event, and one item of POST /outcomes."""

    # defer_build: the schema is built at the first validation, not when a function is imported.
    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, json_schema_extra={"allOf": _TYPE_RULES}, defer_build=True
    )

    outcome_id: OpaqueId = Field(
        description="Idempotency key: a repeat with the same content changes nothing; "
        "the same outcome_id with other content is refused."
    )
    decision_id: OpaqueId = Field(description="The released decision this outcome is about (FollowUpApproved).")
    type: Annotated[OutcomeType, Field(strict=False)] = Field(
        description="survey_responded (surveys), callback_completed (callbacks), delivery_failed (either)."
    )
    occurred_at: Rfc3339 = Field(description="When it happened (the response, the end of the call, the failure).")
    reached: bool | None = Field(
        default=None,
        description="callback_completed only: whether the callback reached the customer. "
        "A callback not reached does not count against the contact caps.",
    )
    resolved: bool | None = Field(
        default=None, description="callback_completed only: whether the callback solved the problem."
    )
    score: float | None = Field(
        default=None,
        ge=MIN_SCORE,
        le=MAX_SCORE,
        description=f"survey_responded only: the customer's score, {MIN_SCORE} to {MAX_SCORE}.",
    )

    @field_validator("reached", "resolved", "score")
    @classmethod
    def _fits_type(cls, value: Any, info: ValidationInfo) -> Any:
        # A field that does not fit the type is refused rather than ignored: it means the sender
        # mixed up two outcomes, and recording either guess would teach the next decision wrongly.
        kind = info.data.get("type")  # absent when the type itself was refused
        if value is None or kind is None:
            return value
        if info.field_name == "score" and kind is not OutcomeType.SURVEY_RESPONDED:
            raise ValueError(f"is sent only with type survey_responded, not {kind.value}")
        if info.field_name != "score" and kind is not OutcomeType.CALLBACK_COMPLETED:
            raise ValueError(f"is sent only with type callback_completed, not {kind.value}")
        if info.field_name == "resolved" and value is True and info.data.get("reached") is False:
            raise ValueError("cannot be true when reached is false: a callback that missed the customer solved nothing")
        return value

    def clock_problem(self, now: datetime) -> str | None:
        """Checked against the recorder's clock, outside the model, which stays clock-free."""
        if self.occurred_at - now > MAX_CLOCK_SKEW:
            return "is in the future; send the time the outcome actually occurred"
        return None

    @property
    def reached_customer(self) -> bool | None:
        """False when the follow-up certainly did not reach the customer (it then frees its cap slot)."""
        if self.type is OutcomeType.DELIVERY_FAILED:
            return False
        if self.type is OutcomeType.SURVEY_RESPONDED:
            return True
        return self.reached


def outcome_fingerprint(outcome: FollowUpOutcome) -> str:
    """sha256 of the outcome's canonical JSON: what a repeat of the same outcome_id must match.

    Canonical: keys sorted, absent and null alike, occurred_at as its UTC instant, score as a float,
    so the same outcome sent on the bus or to POST /outcomes has one fingerprint."""
    content: dict[str, Any] = outcome.model_dump(mode="json", exclude_none=True)
    content["occurred_at"] = format_utc(outcome.occurred_at)
    if outcome.score is not None:
        content["score"] = float(outcome.score)
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # hashlib's digest, without importing hashlib (OpenSSL) at every cold start
    digest: str = sha256(text.encode()).hexdigest()
    return digest


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of the outcome detail."""
    schema = FollowUpOutcome.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://followup-governor/schemas/followup-outcome.json"
    return schema
