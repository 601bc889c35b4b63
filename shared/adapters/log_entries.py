"""Reading decision log entries by key, many at a time: what a listing from the day pages
(shared.adapters.day_pages) does with the ids it found. The entries are read as they are now, so
a listing shows each decision's current state, exactly as the index used to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.adapters import batch_get, decision_log

BATCH_KEYS = batch_get.BATCH_KEYS


def fetch(client: Any, table: str, decision_ids: Iterable[str], consistent: bool = False) -> dict[str, dict[str, Any]]:
    """The entries of `decision_ids` that exist, by id (an expired entry is simply absent)."""
    keys = [decision_log.key(i) for i in dict.fromkeys(decision_ids)]
    return {item[decision_log.KEY]["S"]: item for item in batch_get.items(client, table, keys, consistent)}
