"""A customer's ledger is one DynamoDB item (400 KB at most): the bound policy validation enforces
keeps it far below that, and a ledger grown under a policy stored before the bound (issue 10,
item 6a) keeps taking approvals instead of failing every one of them for a year. On moto, with
the tables of template.yaml."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import pytest

from shared import wiring
from shared.adapters import ledger, policy_store
from shared.adapters.clock import FixedClock
from shared.domain.contacts import (
    FOLLOWUP_MAX_BYTES,
    LEDGER_BUDGET_BYTES,
    MAX_FOLLOWUPS,
    ContactLedger,
    FollowUp,
)
from shared.domain.decision import Action, decision_id_for
from shared.domain.events import InteractionClosed
from shared.domain.policy import STORED, Policy
from tests.conftest import NOW, detail, ledger_of

LONGEST_ID = "i" * 128  # ids are at most 128 characters (the event contract)
ITEM_LIMIT = 400 * 1024


def size(value: dict[str, Any]) -> int:
    """An attribute value's size by DynamoDB's documented rules (names and values in UTF-8, 3
    bytes per list or map plus 1 per element, numbers about 1 byte per 2 digits plus 1)."""
    ((kind, content),) = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "BOOL":
        return 1
    if kind == "N":
        return (len(content.strip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "L":
        return 3 + sum(1 + size(v) for v in content)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + size(v) for k, v in content.items())
    raise ValueError(kind)


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + size(value) for name, value in item.items())


def followups(count: int, customer: str, *, legacy: bool = False) -> tuple[FollowUp, ...]:
    """`count` callbacks of the largest size (every lifecycle and outcome attribute set, unless
    `legacy`: as stored before the lifecycle existed), one an hour up to a week before NOW."""
    first = NOW - timedelta(days=7, hours=count)
    lifecycle: dict[str, Any] = {}
    if not legacy:
        lifecycle = {"closed_at": first, "responded_at": first, "reached": True, "resolved": True}
        lifecycle |= {"state": "pending", "delivery_failed": True}
    return tuple(
        FollowUp(
            Action.CALLBACK,
            first + timedelta(hours=n),
            f"{n:05d}{LONGEST_ID}"[:128],
            decision_id_for(customer, f"old-{n}"),
            **lifecycle,
        )
        for n in range(count)
    )


def write_ledger(table: str, customer: str, count: int, *, legacy: bool = False) -> None:
    """Writes the ledger as the decide path does (the slot-taking update), replacing any."""
    client = boto3.client("dynamodb")
    client.delete_item(TableName=table, Key=ledger.key(customer))
    full = ContactLedger(customer, 1, followups(count, customer, legacy=legacy))
    client.transact_write_items(
        TransactItems=[{"Update": ledger.replace_if_unchanged(table, ContactLedger(customer), full, NOW)}]
    )


def stored_item(table: str, customer: str) -> dict[str, Any]:
    item: dict[str, Any] = boto3.client("dynamodb").get_item(
        TableName=table, Key=ledger.key(customer), ConsistentRead=True
    )["Item"]
    return item


def test_a_full_ledger_stays_under_a_third_of_the_item_limit(aws: Any) -> None:
    # Given a customer with the longest id, at the bound of follow-ups of the largest size,
    # and an opt-out of every kind with the longest source
    customer, table = "c" * 128, aws.names["LedgerTable"]
    write_ledger(table, customer, MAX_FOLLOWUPS)
    wanted = {"survey": True, "callback": True, "all": True}
    wiring.preferences().set(customer, wanted, "s" * 200, "admin", NOW)  # sources are at most 200 characters
    # When the stored item is measured by DynamoDB's size rules
    item = stored_item(table, customer)
    entries = item["followups"]["L"]
    # Then each follow-up fits the size the bound is computed from, and the whole item is far
    # below the 400 KB limit
    assert len(entries) == MAX_FOLLOWUPS
    assert max(1 + size(entry) for entry in entries) <= FOLLOWUP_MAX_BYTES
    assert item_size(item) <= LEDGER_BUDGET_BYTES + 2_000 < ITEM_LIMIT // 3 + 2_000


@pytest.mark.parametrize("count", [MAX_FOLLOWUPS, 3 * MAX_FOLLOWUPS])
def test_a_ledger_at_or_past_the_bound_keeps_taking_approvals_and_shrinks_back(aws: Any, count: int) -> None:
    # Given a version stored before validation bounded the ledger: no caps at all
    uncapped = Policy.model_validate({"caps": {"survey": [], "callback": []}, "version": 1}, context=STORED)
    stored = policy_store.StoredPolicy(1, uncapped, "maria", NOW - timedelta(days=400), "no caps")
    for sort_key in (policy_store._version_key(1), policy_store.CURRENT):
        boto3.client("dynamodb").put_item(TableName=aws.names["PolicyTable"], Item=policy_store._item(stored, sort_key))
    # And a customer whose ledger grew under it to the bound, or to three times it (about 290 KB,
    # on its way to the 400 KB after which every approval of the customer would fail for a year)
    customer, table = "cust-busy", aws.names["LedgerTable"]
    # (its follow-ups stored before the lifecycle attributes existed)
    write_ledger(table, customer, count, legacy=True)
    assert len(ledger_of(aws, customer).followups) == count
    # When an unsolved interaction of that customer is decided by the decide function's path
    wiring.use_clock(FixedClock(NOW))
    event = InteractionClosed.model_validate(
        detail(event_id="e-new", interaction_id="i-new", customer_id=customer, outcome="unresolved")
    )
    outcome = wiring.governor().decide(event)
    # Then the callback is approved and committed, under the stored version
    assert (outcome.decision.action, outcome.decision.policy_version) == ("callback", 1)
    # And the ledger holds the bound again: the new follow-up and the newest others, the oldest dropped
    after = ledger_of(aws, customer)
    assert len(after.followups) == MAX_FOLLOWUPS
    assert after.followed_up("i-new") is not None
    kept = {f.decision_id for f in after.followups}
    by_age = sorted(followups(count, customer, legacy=True), key=lambda f: f.send_at)
    assert by_age[0].decision_id not in kept and by_age[-1].decision_id in kept
    assert item_size(stored_item(table, customer)) <= LEDGER_BUDGET_BYTES
