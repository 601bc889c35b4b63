"""A ledger is dropped by DynamoDB's TTL only once no window can count its follow-ups: 400 days
after the last one, or longer when a window of the policy that took the slot is longer (a callback
cap over two years). On moto, with the tables of template.yaml, through the governor and the
preferences port."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import boto3

from shared.adapters import ledger
from shared.adapters.clock import FixedClock
from shared.adapters.preferences import Preferences
from shared.adapters.store import DynamoStore
from shared.domain.events import InteractionClosed
from shared.domain.policy import Policy
from shared.usecases.decide import Governor
from tests.conftest import NOW, detail

RETENTION = timedelta(days=400)
TWO_CALLBACKS_IN_TWO_YEARS = {"caps": {"callback": [{"max": 2, "days": 730}]}}


def item_of(stack: Any, customer_id: str) -> dict[str, Any]:
    answer = boto3.client("dynamodb").get_item(
        TableName=stack.names["LedgerTable"], Key=ledger.key(customer_id), ConsistentRead=True
    )
    return dict(answer["Item"])


def expires(item: dict[str, Any]) -> datetime | None:
    from datetime import UTC

    return datetime.fromtimestamp(int(item["expires_at"]["N"]), UTC) if "expires_at" in item else None


def callback(stack: Any, policy: Policy, n: int, now: datetime) -> Any:
    store = DynamoStore(stack.names["LedgerTable"], stack.names["DecisionLogTable"], RETENTION)
    event = InteractionClosed.model_validate(
        detail(event_id=f"e-{n}", interaction_id=f"i-{n}", outcome="unresolved", closed_at=now.isoformat())
    )
    return Governor(store, policy=lambda: policy, clock=FixedClock(now)).decide(event).decision


def test_a_ledger_outlives_the_longest_window_of_the_policy_that_took_its_slot(aws: Any) -> None:
    # Given a policy allowing two callbacks in 730 days, and a callback approved under it
    policy = Policy.model_validate(TWO_CALLBACKS_IN_TWO_YEARS)
    first = callback(aws, policy, 1, NOW)
    assert first.action == "callback" and first.send_at is not None
    # Then the ledger is kept until that window has passed, not the default 400 days after the send
    kept = expires(item_of(aws, "cust-1"))
    assert kept is not None and kept >= first.send_at + timedelta(days=730)
    # When the customer opts out of everything (an opted-out ledger is kept for good) and then lifts it
    preferences = Preferences(aws.names["LedgerTable"], aws.names["DecisionLogTable"], RETENTION)
    preferences.set("cust-1", {"all": True}, "letter", "admin", NOW + timedelta(days=1))
    assert expires(item_of(aws, "cust-1")) is None
    preferences.set("cust-1", {"all": False}, "call", "admin", NOW + timedelta(days=2))
    # Then the expiry comes back as long as the window needs
    assert expires(item_of(aws, "cust-1")) == kept
    # And a later callback moves it on by its own window
    second = callback(aws, policy, 2, NOW + timedelta(days=3))
    assert second.action == "callback"
    assert expires(item_of(aws, "cust-1")) >= second.send_at + timedelta(days=730)


def test_under_windows_within_a_year_the_ledger_keeps_the_default_expiry_and_stores_nothing_more(aws: Any) -> None:
    # Given the default policy (no window past a year) and a callback approved under it
    decision = callback(aws, Policy.model_validate({}), 1, NOW)
    assert decision.send_at is not None
    # Then the ledger expires 400 days after the send, with no extra attribute written
    item = item_of(aws, "cust-1")
    assert expires(item) == (decision.send_at + RETENTION).replace(microsecond=0)
    assert "keep_until" not in item
