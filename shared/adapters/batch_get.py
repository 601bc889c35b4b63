"""BatchGetItem over any number of keys: 100 keys a request, unprocessed keys asked again after a
backoff (they mean throttling), a TransientFailure when they stay unprocessed. The ledgers of a
decide batch and the log entries a day listing names are read this way."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from shared.adapters import retry
from shared.domain.errors import TransientFailure

BATCH_KEYS = 100  # BatchGetItem takes at most 100 keys a request
READ_ATTEMPTS = 5


def items(client: Any, table: str, keys: Sequence[dict[str, Any]], consistent: bool) -> Iterator[dict[str, Any]]:
    """The items of `keys` that exist (in no particular order)."""
    for start in range(0, len(keys), BATCH_KEYS):
        request: dict[str, Any] = {
            table: {"Keys": list(keys[start : start + BATCH_KEYS]), "ConsistentRead": consistent}
        }
        for attempt in range(READ_ATTEMPTS):
            if attempt:
                retry.backoff(attempt)  # unprocessed keys mean throttling: give it room
            answer = client.batch_get_item(RequestItems=request)
            yield from answer["Responses"].get(table, [])
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise TransientFailure(f"reads of {table} stayed unprocessed (throttled)")
