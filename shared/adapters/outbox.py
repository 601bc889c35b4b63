"""Reads the outbox: committed decisions not yet published and counted (decision_log's sparse
`outbox` index, KEYS_ONLY), then their log entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters import aws, decision_log, retry
from shared.domain.decision import Decision

READ_ATTEMPTS = 5


class Outbox(aws.AwsPort):
    def __init__(self, log_table: str, client: Any = None) -> None:
        self.log_table = log_table
        super().__init__(client)

    def pending(self, before: datetime, limit: int) -> list[Decision]:
        """Up to `limit` decisions made before `before` that are still in the outbox, oldest shard
        pages first. Each is re-read consistently: the index lags the table, so an entry counted a
        moment ago may still be listed there."""
        ids: list[str] = []
        for query in decision_log.outbox_queries(self.log_table, before):
            while len(ids) < limit:
                answer = self.client.query(**query, Limit=min(100, limit - len(ids)))
                ids += [item[decision_log.KEY]["S"] for item in answer["Items"]]
                if "LastEvaluatedKey" not in answer:
                    break
                query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return self._still_pending(ids[:limit])

    def _still_pending(self, ids: list[str]) -> list[Decision]:
        found: list[Decision] = []
        for start in range(0, len(ids), 100):
            request: dict[str, Any] = {
                self.log_table: {
                    "Keys": [decision_log.key(i) for i in ids[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(READ_ATTEMPTS):
                if attempt:
                    retry.backoff(attempt)
                answer = self.client.batch_get_item(RequestItems=request)
                found += [
                    decision_log.from_item(item)
                    for item in answer["Responses"].get(self.log_table, [])
                    if decision_log.OUTBOX_SHARD in item
                ]
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
            # Keys still unprocessed after the retries are left for the next run.
        return sorted(found, key=lambda d: (d.decided_at, d.decision_id))
