"""Outcomes recorded at once by many recorders, against moto in server mode (shared state, real HTTP):
repeats of one outcome and different outcomes of one customer, all having read before any commits."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from shared.adapters.clock import FixedClock
from shared.adapters.outcome_log import OutcomeLog
from shared.adapters.store import DynamoStore
from shared.domain.contacts import ContactLedger
from shared.domain.events import InteractionClosed
from shared.domain.outcomes import FollowUpOutcome
from shared.usecases.decide import Governor
from shared.usecases.record_outcome import OutcomeResult, RecordOutcomes
from tests.conftest import NOW, detail
from tests.integration.test_concurrency import moto_server  # noqa: F401 - the fixture

RECORDERS = 8


@pytest.mark.server
def test_concurrent_repeats_and_outcomes_of_one_customer_are_each_recorded_exactly_once(
    moto_server: Any,  # noqa: F811 - the fixture
) -> None:
    # Given a customer with a released survey and a released callback
    store = DynamoStore(moto_server.names["LedgerTable"], moto_server.names["DecisionLogTable"], timedelta(days=400))
    governor = Governor(store, clock=FixedClock(NOW))
    closed = (NOW - timedelta(hours=3)).isoformat()
    survey = governor.decide(InteractionClosed.model_validate(detail(event_id="e-s", closed_at=closed))).decision
    callback = governor.decide(
        InteractionClosed.model_validate(
            detail(event_id="e-c", interaction_id="int-2", closed_at=closed, outcome="unresolved")
        )
    ).decision
    assert [(d.action, d.state) for d in (survey, callback)] == [("survey", "released"), ("callback", "released")]
    before = store.load(["cust-1"])["cust-1"]
    occurred = NOW + timedelta(minutes=10)
    response = FollowUpOutcome(
        outcome_id="o-s", decision_id=survey.decision_id, type="survey_responded", occurred_at=occurred
    )  # type: ignore[arg-type]
    missed = FollowUpOutcome(
        outcome_id="o-c",
        decision_id=callback.decision_id,
        type="callback_completed",
        occurred_at=occurred,
        reached=False,
    )  # type: ignore[arg-type]
    log = OutcomeLog(moto_server.names["LedgerTable"], moto_server.names["DecisionLogTable"], timedelta(days=400))
    barrier = threading.Barrier(RECORDERS)

    def read_then_wait(customers: list[str]) -> dict[str, ContactLedger]:
        ledgers = store.load(customers)
        barrier.wait()  # every recorder has read the same ledger before anyone commits
        return ledgers

    def recorder(outcome: FollowUpOutcome) -> OutcomeResult:
        [result] = RecordOutcomes(log, read_then_wait, FixedClock(NOW + timedelta(hours=1))).run([outcome])
        return result

    # When half the recorders record the response and half the missed callback, all at once
    with ThreadPoolExecutor(max_workers=RECORDERS) as pool:
        results = list(pool.map(recorder, [response, missed] * (RECORDERS // 2)))
    # Then each outcome was recorded once and every other copy was a repeat that changed nothing
    assert all(r.refused is None and r.failed is None for r in results)
    assert Counter((r.outcome.outcome_id, r.recorded) for r in results) == {
        ("o-s", True): 1,
        ("o-s", False): RECORDERS // 2 - 1,
        ("o-c", True): 1,
        ("o-c", False): RECORDERS // 2 - 1,
    }
    # And the ledger moved exactly twice, keeping both effects
    after = store.load(["cust-1"])["cust-1"]
    assert after.version == before.version + 2
    assert after.find(survey.decision_id).responded_at == occurred  # type: ignore[union-attr]
    assert after.find(callback.decision_id).reached is False  # type: ignore[union-attr]
