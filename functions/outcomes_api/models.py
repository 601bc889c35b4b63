"""The bodies of POST /outcomes, for its OpenAPI document (the handler validates item by item)."""

from pydantic import BaseModel, Field, RootModel

from shared.domain.outcomes import FollowUpOutcome

MAX_OUTCOMES = 100


class OutcomeBatch(BaseModel):
    outcomes: list[FollowUpOutcome] = Field(
        min_length=1, max_length=MAX_OUTCOMES, description="A refused item is named by its index; the others go on."
    )


class OutcomesRequest(RootModel[FollowUpOutcome | OutcomeBatch]):
    """One FollowUpOutcome, or a batch of up to 100."""


class RefusedOutcome(BaseModel):
    index: int = Field(description="The item's position in the request (0 for a single outcome).")
    code: str = Field(
        description="INVALID_OUTCOME: fix the fields named; DECISION_NOT_FOUND: no such decision_id; "
        "DECISION_NOT_RELEASED: the decision was suppressed, is pending or was cancelled; "
        "OUTCOME_TYPE_MISMATCH: the type does not fit the decision's action; OUTCOME_BEFORE_RELEASE: "
        "occurred_at is before the release; IDEMPOTENCY_KEY_REUSED: the outcome_id was recorded with "
        "other content, send a new one; TRY_AGAIN: send the item again."
    )
    message: str
    fields: list[str] | None = Field(default=None, description="The item's fields to change.")


class OutcomesAnswer(BaseModel):
    accepted: int = Field(
        description="Items recorded, or recorded before with the same content (a repeat changes nothing)."
    )
    failed: list[RefusedOutcome]
