"""The bodies of POST /events, for its OpenAPI document (the handler validates item by item)."""

from pydantic import BaseModel, Field, RootModel

from shared.domain.events import InteractionClosed
from shared.usecases.ingest import MAX_EVENTS


class EventBatch(BaseModel):
    events: list[InteractionClosed] = Field(
        min_length=1, max_length=MAX_EVENTS, description="A bad item is refused by its index; the others go on."
    )


class IngestRequest(RootModel[InteractionClosed | EventBatch]):
    """One InteractionClosed detail, or a batch of up to 100."""


class RefusedItem(BaseModel):
    index: int = Field(description="The item's position in the request (0 for a single detail).")
    code: str = Field(description="INVALID_EVENT: fix the fields named; TRY_AGAIN: send the item again.")
    message: str
    fields: list[str] | None = Field(default=None, description="The item's fields to change.")


class IngestAnswer(BaseModel):
    accepted: int = Field(description="Items put on the bus: each will be decided once.")
    failed: list[RefusedItem]
