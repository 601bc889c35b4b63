"""The admin API shows the lifecycle: GET /decisions filters by state (entries logged before the
lifecycle existed count as what they were), for both query kinds, and pages stay exact."""

from __future__ import annotations

import urllib.parse
from datetime import timedelta
from typing import Any

import boto3

from shared.adapters import decision_log
from shared.domain import engine
from shared.domain.contacts import ContactLedger
from shared.domain.decision import CancelReason, Decision, State
from shared.domain.events import InteractionClosed
from shared.domain.policy import default_policy
from tests.conftest import NOW, detail, drain_stream
from tests.integration.test_admin_api import admin_environment, call

__all__ = ["admin_environment"]  # the module's autouse fixture: admin function environment, fixed clock


def logged(aws: Any, n: int, outcome: str, state: State | None, legacy: bool = False) -> Decision:
    """A real decision of customer life-c, moved to `state`, written to the log (without any
    lifecycle attribute when `legacy`: as entries were logged before the lifecycle existed)."""
    at = NOW - timedelta(hours=n)
    event = InteractionClosed.model_validate(
        detail(
            event_id=f"life-{n}",
            interaction_id=f"life-i{n}",
            customer_id="life-c",
            outcome=outcome,
            closed_at=(at - timedelta(minutes=1)).isoformat(),
        )
    )
    decision = engine.decide(event, ContactLedger("life-c"), default_policy(), at)
    if state is not None:
        reason = CancelReason.EXPIRED if state is State.CANCELLED else None
        decision = decision.with_state(state, reason, at)
    item = decision_log.to_item(decision, timedelta(days=400))
    if legacy:
        for name in (decision_log.STATE, decision_log.STATE_REASON, decision_log.STATE_CHANGED_AT):
            item.pop(name, None)
        doc = decision.model_dump(mode="json", exclude={"state", "state_reason", "state_changed_at", "supersedes"})
        item["doc"] = {"S": Decision.model_validate(doc).model_dump_json(exclude={"state", "state_changed_at"})}
    boto3.client("dynamodb").put_item(TableName=aws.names["DecisionLogTable"], Item=item)
    return decision


def ids(path: str) -> set[str]:
    status, _, page = call("GET", path)
    assert status == 200, page
    return {d["decision_id"] for d in page["items"]}


def test_decisions_filter_by_state_for_a_customer_and_a_time_range(aws: Any) -> None:
    # Given one decision in each state, and an approval and a suppression logged before the lifecycle
    pending = logged(aws, 1, "resolved", State.PENDING)
    released = logged(aws, 2, "resolved", State.RELEASED)
    cancelled = logged(aws, 3, "resolved", State.CANCELLED)
    suppressed = logged(aws, 4, "abandoned", None)  # a single abandoned contact: no follow-up
    old_approval = logged(aws, 5, "escalated", None, legacy=True)
    old_suppression = logged(aws, 6, "abandoned", None, legacy=True)
    drain_stream(aws)  # a time range lists what the log stream function put on day pages
    assert suppressed.state is State.SUPPRESSED and old_approval.approved and not old_suppression.approved
    start = urllib.parse.quote((NOW - timedelta(days=1)).isoformat())
    expected = {
        "pending": {pending.decision_id},
        "released": {released.decision_id, old_approval.decision_id},
        "cancelled": {cancelled.decision_id},
        "suppressed": {suppressed.decision_id, old_suppression.decision_id},
    }
    for state, wanted in expected.items():
        # When an admin filters by that state, by customer and by time range
        by_customer = ids(f"/decisions?customer_id=life-c&state={state}")
        by_range = ids(f"/decisions?from={start}&to=2026-11-23&state={state}")
        # Then exactly the decisions in that state come back, whichever way they were logged
        assert by_customer == wanted, state
        assert by_range == wanted, state
    # And the lifecycle travels with each decision
    _, _, one = call("GET", f"/decisions/{cancelled.decision_id}")
    assert (one["state"], one["state_reason"]) == ("cancelled", "EXPIRED")


def test_an_unknown_state_is_refused_naming_the_field() -> None:
    status, _, error = call("GET", "/decisions?customer_id=life-c&state=sent")
    assert status == 400
    assert "query.state" in [f["field"] for f in error["fields"]]
