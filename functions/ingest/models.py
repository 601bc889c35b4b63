"""The bodies of POST /events, for its OpenAPI document (the handler validates item by item)."""

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.events import InteractionClosed
from shared.usecases.ingest import MAX_EVENTS


# Every model here has defer_build: its schema is built the first time a route validates or answers
# with it (or the OpenAPI document is generated), not at the cold import of the function.
class EventBatch(BaseModel):
    model_config = ConfigDict(defer_build=True)

    events: list[InteractionClosed] = Field(
        min_length=1, max_length=MAX_EVENTS, description="A bad item is refused by its index; the others go on."
    )


class RefusedItem(BaseModel):
    model_config = ConfigDict(defer_build=True)

    index: int = Field(description="The item's position in the request (0 for a single detail).")
    code: str = Field(description="INVALID_EVENT: fix the fields named; TRY_AGAIN: send the item again.")
    message: str
    fields: list[str] | None = Field(default=None, description="The item's fields to change.")


class IngestAnswer(BaseModel):
    model_config = ConfigDict(defer_build=True)

    accepted: int = Field(description="Items put on the bus: each will be decided once.")
    failed: list[RefusedItem]


@cache
def _ingest_request() -> type[BaseModel]:
    # Parametrizing RootModel builds a schema at once, whatever the config says; this model only
    # documents the request body (infra/openapi.py), so it is made when the OpenAPI document asks.
    from pydantic import RootModel  # noqa: PLC0415

    class IngestRequest(RootModel[InteractionClosed | EventBatch]):
        """One InteractionClosed detail, or a batch of up to 100."""

    return IngestRequest


def __getattr__(name: str) -> Any:
    if name == "IngestRequest":
        return _ingest_request()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
