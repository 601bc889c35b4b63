"""The bodies of POST /outcomes, for its OpenAPI document (the handler validates item by item)."""

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.outcomes import FollowUpOutcome

MAX_OUTCOMES = 100


# Every model here has defer_build: its schema is built the first time a route validates or answers
# with it (or the OpenAPI document is generated), not at the cold import of the function.
class OutcomeBatch(BaseModel):
    model_config = ConfigDict(defer_build=True)

    outcomes: list[FollowUpOutcome] = Field(
        min_length=1, max_length=MAX_OUTCOMES, description="A refused item is named by its index; the others go on."
    )


class RefusedOutcome(BaseModel):
    model_config = ConfigDict(defer_build=True)

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
    model_config = ConfigDict(defer_build=True)

    accepted: int = Field(
        description="Items recorded, or recorded before with the same content (a repeat changes nothing)."
    )
    failed: list[RefusedOutcome]


@cache
def _outcomes_request() -> type[BaseModel]:
    # Parametrizing RootModel builds a schema at once, whatever the config says; this model only
    # documents the request body (infra/openapi.py), so it is made when the OpenAPI document asks.
    from pydantic import RootModel  # noqa: PLC0415

    class OutcomesRequest(RootModel[FollowUpOutcome | OutcomeBatch]):
        """One FollowUpOutcome, or a batch of up to 100."""

    return OutcomesRequest


def __getattr__(name: str) -> Any:
    if name == "OutcomesRequest":
        return _outcomes_request()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
