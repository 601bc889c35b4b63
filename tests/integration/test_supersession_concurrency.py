"""Issue 11: deciders running at the same instant for one customer, each superseding the same held
survey, against moto in server mode (DynamoDB's per-request atomicity, infra/local/emulator.py;
in-process moto lets two transactions interleave, which DynamoDB never does)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import boto3
import pytest

from shared import wiring
from shared.adapters import ledger as ledger_items
from shared.adapters.store import Committed, DynamoStore
from shared.domain.decision import Decision, State
from shared.domain.events import InteractionClosed
from shared.domain.policy import default_policy
from shared.usecases.decide import Governor
from tests.conftest import NOW, detail, drain_stream
from tests.integration.test_concurrency import moto_server  # noqa: F401 - the server fixture
from tests.integration.test_release import RETENTION, decision


def store_of(stack: Any) -> DynamoStore:
    names = stack.names
    return DynamoStore(names["LedgerTable"], names["DecisionLogTable"], RETENTION)


def deciders_at_once(store: DynamoStore, events: list[InteractionClosed], at: Any) -> list[Decision]:
    """Each event decided by its own decider; all have read the ledger before any commits."""
    from shared.adapters.clock import FixedClock

    barrier = threading.Barrier(len(events))

    def decider(event: InteractionClosed) -> Decision:
        governor = Governor(store, policy=default_policy, clock=FixedClock(at))
        governor.prefetch([event.customer_id])
        barrier.wait()
        return governor.decide(event).decision

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        return list(pool.map(decider, events))


@pytest.mark.server
@pytest.mark.parametrize("offsets", [(10, 20), (20, 10)], ids=["older-listed-first", "newer-listed-first"])
def test_concurrent_deciders_of_newer_interactions_cancel_the_held_survey_once_and_keep_one(
    moto_server: Any,  # noqa: F811
    offsets: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = store_of(moto_server)
    # Given a survey held for the customer's interaction that closed 30 minutes ago
    held = decision("evt-held")
    before = store.load(["cust-1"])["cust-1"]
    assert isinstance(store.commit(held, before, before.after(held, RETENTION, NOW), NOW), Committed)
    # When two newer interactions of the customer are decided at the same instant by two deciders
    events = [
        InteractionClosed.model_validate(
            detail(event_id=f"evt-{m}", interaction_id=f"int-{m}", closed_at=(NOW + timedelta(minutes=m)).isoformat())
        )
        for m in offsets
    ]
    decided = deciders_at_once(store, events, NOW + timedelta(minutes=25))
    # Then the held survey was cancelled exactly once, by exactly one of them, and counted once
    logged = {d.decision_id: store.get_decision(d.decision_id) for d in (held, *decided)}
    assert logged[held.decision_id].state is State.CANCELLED  # type: ignore[union-attr]
    assert sum(held.decision_id in d.supersedes for d in decided) == 1
    # (counted by the log stream function, from the log's stream)
    for function in ("LogStreamFunction", "LogCountFunction"):
        for name, value in moto_server.environment(function).items():
            monkeypatch.setenv(name, value)
    wiring.reset()
    assert [a["batchItemFailures"] for a in drain_stream(moto_server)] == [[], []]
    (day,) = wiring.stats().days(NOW.date(), NOW.date())
    assert day["cancelled_by_reason"] == {"SUPERSEDED_BY_NEWER_INTERACTION": sum(len(d.supersedes) for d in decided)}
    # And the ledger holds exactly one pending follow-up, the one the log says is pending:
    # the newest interaction's (an older interaction never supersedes a newer one)
    item = boto3.client("dynamodb").get_item(
        TableName=moto_server.names["LedgerTable"], Key=ledger_items.key("cust-1"), ConsistentRead=True
    )["Item"]
    pending = ledger_items.from_item("cust-1", item).pending()
    assert [f.interaction_id for f in pending] == ["int-20"]
    assert {i for i, d in logged.items() if d is not None and d.state is State.PENDING} == {pending[0].decision_id}
