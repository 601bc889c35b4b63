"""What-if: replay logged events through the pure engine under two policies and compare.

Each event is decided as of the time it was first decided, against a fresh in-memory ledger per
policy (MemoryStore, the same port as production), so caps and gaps build up as they would
have. Nothing real is read beyond the log, and nothing is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.adapters import aws, decision_log
from shared.domain import engine
from shared.domain.contacts import ContactLedger
from shared.domain.decision import Decision
from shared.domain.events import InteractionClosed
from shared.domain.policy import Policy

MAX_DAYS = 90
READERS = 16


@dataclass(frozen=True)
class Replayable:
    event: InteractionClosed
    at: datetime

    @classmethod
    def of(cls, decision: Decision) -> Replayable:
        fields = decision.input.model_dump()
        event = InteractionClosed.model_validate(
            {
                "event_id": decision.event_id,
                "interaction_id": decision.interaction_id,
                "customer_id": decision.customer_id,
                **{k: v for k, v in fields.items() if v is not None},
            }
        )
        return cls(event, decision.decided_at)


class _Run:
    """One policy over the whole replay, with its own ledgers."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.ledgers: dict[str, ContactLedger] = {}
        self.by_action: Counter[str] = Counter()
        self.by_reason: Counter[str] = Counter()

    def decide(self, item: Replayable) -> Decision:
        customer = item.event.customer_id
        ledger = self.ledgers.get(customer) or ContactLedger(customer)
        decision = engine.decide(item.event, ledger, self.policy, item.at)
        if decision.approved:
            self.ledgers[customer] = ledger.after(decision, self.policy.ledger_retention, item.at)
        self.by_action[str(decision.action)] += 1
        self.by_reason[str(decision.reason)] += 1
        return decision

    def summary(self) -> dict[str, Any]:
        return {"version": self.policy.version, "by_action": dict(self.by_action), "by_reason": dict(self.by_reason)}


def simulate(items: Iterable[Replayable], current: Policy, candidate: Policy, sample_size: int = 20) -> dict[str, Any]:
    ordered = sorted(items, key=lambda i: (i.at, i.event.event_id))
    before, after = _Run(current), _Run(candidate)
    changed = 0
    sample: dict[str, list[dict[str, Any]]] = {}
    for item in ordered:
        old, new = before.decide(item), after.decide(item)
        if (old.action, old.reason) == (new.action, new.reason):
            continue
        changed += 1
        customer = item.event.customer_id
        if customer in sample or len(sample) < sample_size:
            sample.setdefault(customer, []).append(
                {
                    "event_id": item.event.event_id,
                    "closed_at": item.event.closed_at.isoformat(),
                    "current": {"action": str(old.action), "reason": str(old.reason)},
                    "candidate": {"action": str(new.action), "reason": str(new.reason)},
                }
            )
    actions = sorted(set(before.by_action) | set(after.by_action))
    reasons = sorted(set(before.by_reason) | set(after.by_reason))
    return {
        "events": len(ordered),
        "current": before.summary(),
        "candidate": after.summary(),
        "difference": {
            "by_action": {k: after.by_action[k] - before.by_action[k] for k in actions},
            "by_reason": {k: after.by_reason[k] - before.by_reason[k] for k in reasons},
        },
        "changed_events": changed,
        "changed_customers_sample": [{"customer_id": c, "events": e} for c, e in sample.items()],
    }


def logged_since(table: str, days: int, now: datetime, client: Any = None) -> Iterator[Replayable]:
    """The events the decision log recorded in the last `days` days, read from the day index
    (never a scan). Every (day, shard) partition is read concurrently: API Gateway gives a
    request 29 s, and read one page after another a long log would not fit."""
    dynamodb = client or aws.client("dynamodb")
    start = now - timedelta(days=days)
    queries = []
    day = start.date()
    while day <= now.date():
        queries += decision_log.day_queries(table, day.isoformat())
        day += timedelta(days=1)

    def read(query: dict[str, Any]) -> list[Replayable]:
        found, request = [], {**query, "ProjectionExpression": "doc"}
        while True:
            page = dynamodb.query(**request)
            for item in page["Items"]:
                decision = decision_log.from_item(item)
                if start <= decision.decided_at <= now:
                    found.append(Replayable.of(decision))
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    with ThreadPoolExecutor(max_workers=READERS) as pool:
        for batch in pool.map(read, queries):
            yield from batch
