"""16 deciders at once for one customer, against moto in server mode (shared state, real HTTP).

The design rests on one conditional request per slot. DynamoDB applies each request atomically;
moto does not, so the emulator serves one DynamoDB request at a time (infra/local/emulator.py), which is
that guarantee and no more: the read-decide-write across requests still races, as on AWS.
A barrier makes every decider read the ledger before any of
them commits, so all but one lose their condition and must decide again on the fresh state."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import boto3
import pytest

from shared.adapters import aws as aws_clients
from shared.adapters.clock import FixedClock
from shared.adapters.store import DynamoStore
from shared.domain.errors import LedgerContention
from shared.domain.events import InteractionClosed
from shared.usecases.decide import Governor, Outcome
from tests.conftest import NOW, detail

DECIDERS = 16


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto in server mode with DynamoDB's per-request atomicity (infra/local/emulator.py)."""
    from infra.local import emulator
    from infra.local.provision import provision

    server, endpoint = emulator.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    aws_clients.reset_clients()
    try:
        yield provision(boto3.Session(region_name="us-east-1"))
    finally:
        server.stop()
        aws_clients.reset_clients()


def decide_all_at_once(stack: Any, events: list[InteractionClosed]) -> list[Outcome]:
    store = DynamoStore(stack.names["LedgerTable"], stack.names["DecisionLogTable"], timedelta(days=400))
    barrier = threading.Barrier(len(events))

    def decider(event: InteractionClosed) -> Outcome:
        governor = Governor(store, clock=FixedClock(NOW))
        governor.prefetch([event.customer_id])
        barrier.wait()  # every decider has read the same ledger before anyone commits
        while True:
            try:
                return governor.decide(event)
            except LedgerContention:
                continue  # what SQS redelivery would do: decide again later

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        return list(pool.map(decider, events))


@pytest.mark.server
def test_sixteen_concurrent_deciders_never_exceed_the_survey_cap(moto_server: Any) -> None:
    # Given sixteen solved interactions of one customer, decided at the same instant by sixteen deciders
    events = [
        InteractionClosed.model_validate(detail(event_id=f"e-{n}", interaction_id=f"i-{n}", customer_id="hot"))
        for n in range(DECIDERS)
    ]
    # When they all commit at once
    outcomes = decide_all_at_once(moto_server, events)
    # Then exactly one survey is approved, every other event is refused for the cap or the gap
    actions = Counter(o.decision.action for o in outcomes)
    assert actions == {"survey": 1, "none": DECIDERS - 1}
    assert all(
        o.decision.reasons[0] in ("SURVEY_CAP_REACHED", "CONTACT_COOLDOWN") for o in outcomes if not o.decision.approved
    )
    # And the ledger holds that one survey, every event has exactly one logged decision
    store = DynamoStore(moto_server.names["LedgerTable"], moto_server.names["DecisionLogTable"], timedelta(days=400))
    state = store.load(["hot"])["hot"]
    assert [f.kind for f in state.followups] == ["survey"]
    for outcome in outcomes:
        assert store.get_decision(outcome.decision.decision_id) == outcome.decision


@pytest.mark.server
def test_sixteen_concurrent_unsolved_interactions_get_one_callback_and_no_survey(moto_server: Any) -> None:
    # Given sixteen unresolved interactions of one customer, decided at once
    events = [
        InteractionClosed.model_validate(
            detail(event_id=f"e-{n}", interaction_id=f"i-{n}", customer_id="angry", outcome="unresolved")
        )
        for n in range(DECIDERS)
    ]
    # When they all commit at once
    outcomes = decide_all_at_once(moto_server, events)
    # Then one callback is approved, the rest hit the callback cap, and none becomes a survey
    actions = Counter(o.decision.action for o in outcomes)
    assert actions == {"callback": 1, "none": DECIDERS - 1}
    assert {o.decision.reasons[0] for o in outcomes if not o.decision.approved} == {"CALLBACK_CAP_REACHED"}
    store = DynamoStore(moto_server.names["LedgerTable"], moto_server.names["DecisionLogTable"], timedelta(days=400))
    assert [f.kind for f in store.load(["angry"])["angry"].followups] == ["callback"]
