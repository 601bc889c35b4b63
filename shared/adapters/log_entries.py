"""Reading decision log entries by key, many at a time: what a listing from the day pages
(shared.adapters.day_pages) does with the ids it found. The entries are read as they are now, so
a listing shows each decision's current state, exactly as the index used to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.adapters import decision_log, retry
from shared.domain.errors import TransientFailure

BATCH_KEYS = 100  # BatchGetItem takes at most 100 keys a request
READ_ATTEMPTS = 5


def fetch(client: Any, table: str, decision_ids: Iterable[str], consistent: bool = False) -> dict[str, dict[str, Any]]:
    """The entries of `decision_ids` that exist, by id (an expired entry is simply absent)."""
    wanted = list(dict.fromkeys(decision_ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), BATCH_KEYS):
        request: dict[str, Any] = {
            table: {
                "Keys": [decision_log.key(i) for i in wanted[start : start + BATCH_KEYS]],
                "ConsistentRead": consistent,
            }
        }
        for attempt in range(READ_ATTEMPTS):
            if attempt:
                retry.backoff(attempt)  # unprocessed keys mean throttling: give it room
            answer = client.batch_get_item(RequestItems=request)
            for item in answer["Responses"].get(table, []):
                found[item[decision_log.KEY]["S"]] = item
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise TransientFailure("log entry reads stayed unprocessed (throttled)")
    return found
