"""What-if: replay logged events through the pure engine under two policies and compare.

Each event is decided as of the time it was first decided, against a fresh in-memory ledger per
policy, so caps and gaps build up as they would have. The lifecycle runs too, in time order:
a decision supersedes the pending follow-ups of older interactions (engine.decide), each pending
follow-up is re-checked at its send time (engine.recheck: freshness, policy) and released or
cancelled, and the logged outcomes (survey responses, callbacks, failed deliveries) are applied
to the follow-ups the policy actually released, so cooldowns and survey fatigue build up as they
would have. Nothing real is read beyond the log, and nothing is written.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from shared.adapters import aws, decision_log
from shared.domain import engine
from shared.domain.contacts import ContactLedger
from shared.domain.decision import CancelReason, Decision, State, format_utc
from shared.domain.events import InteractionClosed
from shared.domain.outcomes import FollowUpOutcome
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
    """One policy over the whole replay, with its own ledgers and held follow-ups."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.ledgers: dict[str, ContactLedger] = {}
        self.by_action: Counter[str] = Counter()
        self.by_reason: Counter[str] = Counter()
        self.released: Counter[str] = Counter()  # by action
        self.cancelled: Counter[str] = Counter()  # by CancelReason
        self.outcomes_applied = 0
        self._held: list[tuple[datetime, str, Decision]] = []  # pending follow-ups by send time
        self._customer_of: dict[str, str] = {}

    def settle(self, until: datetime) -> None:
        """Re-checks, in send-time order, every held follow-up due by `until`, as its schedule would."""
        while self._held and self._held[0][0] <= until:
            at, decision_id, decision = heapq.heappop(self._held)
            ledger = self.ledgers[decision.customer_id]
            followup = ledger.find(decision_id)
            if followup is None or not followup.pending:
                continue  # superseded at decision time: counted then
            state, reason, _ = engine.recheck(followup, decision, ledger, self.policy, at)
            if state is State.RELEASED:
                self.ledgers[decision.customer_id] = ledger.released(decision_id)
                self.released[str(decision.action)] += 1
            else:
                self.ledgers[decision.customer_id] = ledger.cancelled(decision_id)
                self.cancelled[str(reason)] += 1

    def record(self, outcome: FollowUpOutcome) -> None:
        """An outcome counts only for a follow-up this policy released: no one answers a survey
        they were never sent."""
        customer = self._customer_of.get(outcome.decision_id)
        ledger = self.ledgers.get(customer) if customer else None
        followup = ledger.find(outcome.decision_id) if ledger else None
        if ledger is None or followup is None or followup.pending or not outcome.type.fits(followup.kind):
            return
        self.ledgers[ledger.customer_id] = ledger.with_outcome(outcome)
        self.outcomes_applied += 1

    def decide(self, item: Replayable) -> Decision:
        customer = item.event.customer_id
        ledger = self.ledgers.get(customer) or ContactLedger(customer)
        decision = engine.decide(item.event, ledger, self.policy, item.at)
        if decision.approved or decision.supersedes:
            self.ledgers[customer] = ledger.after(decision, self.policy.ledger_retention, item.at)
        self.cancelled[str(CancelReason.SUPERSEDED_BY_NEWER_INTERACTION)] += len(decision.supersedes)
        if decision.state is State.PENDING and decision.send_at is not None:
            heapq.heappush(self._held, (decision.send_at, decision.decision_id, decision))
        elif decision.state is State.RELEASED:
            self.released[str(decision.action)] += 1
        if decision.approved:
            self._customer_of[decision.decision_id] = customer
        self.by_action[str(decision.action)] += 1
        self.by_reason[str(decision.reason)] += 1
        return decision

    def summary(self) -> dict[str, Any]:
        return {
            "version": self.policy.version,
            "by_action": dict(self.by_action),
            "by_reason": dict(self.by_reason),
            "released": sum(self.released.values()),
            "cancelled": sum(self.cancelled.values()),
            "cancelled_by_reason": {k: v for k, v in sorted(self.cancelled.items()) if v},
            "pending": len(self._held),
            "outcomes_applied": self.outcomes_applied,
        }


def simulate(
    items: Iterable[Replayable],
    current: Policy,
    candidate: Policy,
    sample_size: int = 20,
    outcomes: Iterable[FollowUpOutcome] = (),
) -> dict[str, Any]:
    ordered = sorted(items, key=lambda i: (i.at, i.event.event_id))
    reported = sorted(outcomes, key=lambda o: (o.occurred_at, o.outcome_id))
    before, after = _Run(current), _Run(candidate)
    changed = 0
    sample: dict[str, list[dict[str, Any]]] = {}
    waiting = iter(reported)
    next_outcome = next(waiting, None)
    for item in ordered:
        # What happened before this event, in time order: releases due, outcomes reported.
        while next_outcome is not None and next_outcome.occurred_at <= item.at:
            for run in (before, after):
                run.settle(next_outcome.occurred_at)
                run.record(next_outcome)
            next_outcome = next(waiting, None)
        for run in (before, after):
            run.settle(item.at)
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
    for run in (before, after):  # the traffic ends; its held follow-ups still fall due
        run.settle(datetime.max.replace(tzinfo=UTC))
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


def logged_outcomes(
    table: str, customers: Iterable[str], start: datetime, end: datetime, client: Any = None
) -> list[FollowUpOutcome]:
    """The outcomes recorded for these customers' follow-ups between `start` and `end`, read from the
    by-customer index (outcome records sit in the decision log beside the decisions; never a scan)."""
    dynamodb = client or aws.client("dynamodb")

    def read(customer: str) -> list[FollowUpOutcome]:
        found: list[FollowUpOutcome] = []
        request: dict[str, Any] = {
            "TableName": table,
            "IndexName": decision_log.BY_CUSTOMER,
            "KeyConditionExpression": "customer_id = :c AND decided_at BETWEEN :start AND :end",
            "FilterExpression": "record_type = :outcome",
            "ExpressionAttributeValues": {
                ":c": {"S": customer},
                ":start": {"S": format_utc(start)},
                ":end": {"S": format_utc(end)},
                ":outcome": {"S": "outcome"},
            },
            "ProjectionExpression": "doc",
        }
        while True:
            page = dynamodb.query(**request)
            for item in page["Items"]:
                outcome = _outcome_of(json.loads(item["doc"]["S"]))
                if outcome is not None:
                    found.append(outcome)
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    with ThreadPoolExecutor(max_workers=READERS) as pool:
        return [o for batch in pool.map(read, sorted(set(customers))) for o in batch]


def _outcome_of(doc: dict[str, Any]) -> FollowUpOutcome | None:
    fields = {k: v for k, v in doc.items() if k in FollowUpOutcome.model_fields}
    try:
        return FollowUpOutcome.model_validate_json(json.dumps(fields))
    except ValidationError:
        return None  # a record this contract version cannot read: left out of the what-if
