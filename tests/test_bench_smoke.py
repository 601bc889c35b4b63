"""The request-counting benchmark at a tiny size: AWS requests per event stay flat whatever the history."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from bench.aws_path import DYNAMODB_WRITES, measure


def test_requests_per_event_are_flat_whatever_the_customers_history() -> None:
    # Given 50 events for customers with 1 past interaction and for customers with 20
    short, long = measure(events=50, histories=(1, 20))
    for result in (short, long):
        # Then every event is decided once, nothing fails, every decision is published
        assert result.events == 50
        assert result.failed_records == 0
        assert result.redelivered == 0
        assert result.approvals + result.suppressions == result.events
        # And each new event costs exactly one DynamoDB write (a put or a two-item transaction)
        assert result.calls("dynamodb", *DYNAMODB_WRITES) == result.events
        # And ledgers are read once per batch at most
        assert result.calls("dynamodb", "BatchGetItem") <= result.batches
        assert result.other_requests == {}
        # And a batch publishes its decisions plus the FollowUpCancelled of the follow-ups they
        # superseded, in ceil(entries / 10) PutEvents; each held follow-up got one schedule; each
        # superseded one had its schedule deleted and its log entry read once (to announce it)
        assert result.put_events_entries == result.events + result.cancellations
        assert result.calls("events", "PutEvents") == result.put_events_needed
        assert result.calls("scheduler", "CreateSchedule") == result.held
        assert result.calls("scheduler", "DeleteSchedule") == result.cancellations
        assert result.calls("dynamodb", "GetItem") == result.cancellations
        assert result.lifecycle_requests_match
        # And the counters were on the clients the product actually used
        assert result.clients_unchanged
    # And the history did its work: the long one holds more follow-ups than a fresh customer could
    assert long.ledger_entries_max > short.ledger_entries_max
    # And a long history costs the same requests per event as a short one (the lifecycle's requests,
    # driven by held and superseded follow-ups, not by history, are checked exactly above)
    assert long.batches == short.batches
    assert long.request_profile == short.request_profile


def test_the_emulator_speed_ups_keep_moto_answers_and_rollbacks() -> None:
    from bench.emulator import emulator

    item: dict[str, Any] = {
        "customer_id": {"S": "c-1"},
        "version": {"N": "1"},
        "followups": {"L": [{"M": {"kind": {"S": "survey"}, "n": {"N": "2"}, "ok": {"BOOL": True}}}]},
        "tags": {"SS": ["a", "b"]},
        "gone": {"NULL": True},
        "blob": {"B": b"\x00\x01"},
    }
    with emulator() as bench:
        dynamodb, ledger_table = bench.dynamodb, bench.stack.names["LedgerTable"]
        log_table = bench.stack.names["DecisionLogTable"]
        dynamodb.put_item(TableName=ledger_table, Item=item)
        dynamodb.put_item(TableName=log_table, Item={"decision_id": {"S": "d-taken"}})
        # Answers are unchanged, binary included
        assert dynamodb.get_item(TableName=ledger_table, Key={"customer_id": {"S": "c-1"}})["Item"] == item
        # A cancelled transaction leaves the existing item as it was and creates nothing
        with pytest.raises(ClientError, match="TransactionCanceled"):
            dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": ledger_table,
                            "Key": {"customer_id": {"S": "c-1"}},
                            "UpdateExpression": "SET version = :v REMOVE followups",
                            "ExpressionAttributeValues": {":v": {"N": "2"}},
                        }
                    },
                    {"Put": {"TableName": ledger_table, "Item": {"customer_id": {"S": "c-new"}}}},
                    {
                        "Put": {
                            "TableName": log_table,
                            "Item": {"decision_id": {"S": "d-taken"}},
                            "ConditionExpression": "attribute_not_exists(decision_id)",
                        }
                    },
                ]
            )
        assert dynamodb.get_item(TableName=ledger_table, Key={"customer_id": {"S": "c-1"}})["Item"] == item
        assert "Item" not in dynamodb.get_item(TableName=ledger_table, Key={"customer_id": {"S": "c-new"}})


@pytest.mark.server
def test_the_local_stack_benchmark_decides_every_event_and_times_decide() -> None:
    from bench import local_stack

    # Given 40 events through the whole local stack, then 20 POST /decide calls, then the moto baseline
    result = local_stack.measure(events=40, decide_calls=20, baseline_seconds=0.2)
    # Then every event was accepted, handled once and logged, and the queue drained
    assert result.all_decided
    assert result.accepted == result.logged == result.handled_records == 40
    assert sum(result.actions.values()) == 40
    assert result.events_per_second > 0
    # And every decide call answered 200 with a decision, with sane latencies
    assert result.decide_ok
    assert len(result.decide_ms) == 20
    assert sum(result.decide_actions.values()) == 20 + len(result.kept_alive_ms)
    assert result.decide_p99 >= result.decide_p50 > 0
    # And the baseline and the ratios to it are produced
    assert result.moto_requests > 0
    assert result.moto_per_second > 0
    assert result.queue_to_moto > 0
    assert result.decide_p50_to_moto > 0


def test_the_simulation_benchmark_replays_every_logged_event_under_both_policies() -> None:
    from bench import simulation

    # Given 500 logged decisions, all written to moto and read back
    result = simulation.measure(events=500, read_events=500, engine_per_second=20_000.0)
    assert result.read_full_size
    assert result.read_queries >= 16 * result.days
    # Then both policies decided every event once, and the current one as the log says
    assert result.report["events"] == 500
    assert result.counts_add_up
    assert result.replay_matches_log
    # And the candidate (stricter surveys) surveys no more than the current policy
    assert result.report["difference"]["by_action"].get("survey", 0) <= 0
    # And the timings and the ratio to the engine are produced
    assert result.simulate_seconds > 0
    assert result.parse_seconds > 0
    assert result.to_engine is not None
    assert result.to_engine > 0
    assert result.full_queries >= result.read_queries


def test_the_naive_baseline_costs_more_requests_and_its_reads_grow_with_history() -> None:
    from bench import naive

    # Given the same 60 events through this design and through the naive Powertools-idempotency baseline
    costed = naive.measure_cost(events=60)
    # Then both decide the same, and the naive one makes more DynamoDB requests per event
    assert costed.same_decisions
    assert costed.ours.failed == costed.naive.failed == 0
    assert costed.naive.per_event()["dynamodb"] > costed.ours.per_event()["dynamodb"]
    # And both make the same lifecycle requests: a schedule per held follow-up, a deletion per superseded one
    for name in ("scheduler.CreateSchedule", "scheduler.DeleteSchedule"):
        assert costed.ours.meter.calls[name] == costed.naive.meter.calls[name]
    # And at histories of 1 and 50 past interactions, ours costs the same requests and read units per
    # decision, apart from those that follow the lifecycle (naive.LIFECYCLE): a longer history changes how
    # many follow-ups are held and superseded (fuller caps), so those are counted per follow-up instead
    short, long = naive.measure_histories((1, 50), customers=1, events_per_customer=20)
    assert short.same_decisions and long.same_decisions
    ours_short, ours_long = short.runs["ours"], long.runs["ours"]
    assert ours_long.steady_requests_per_decision == ours_short.steady_requests_per_decision
    assert ours_long.steady_rru == ours_short.steady_rru
    for level in (short, long):
        ours_calls, naive_calls = level.runs["ours"].meter.calls, level.runs["naive"].meter.calls
        # one read of the cancelled log entry per superseded follow-up, and schedules as the naive one makes
        assert ours_calls["dynamodb.GetItem"] == ours_calls["scheduler.DeleteSchedule"]
        for name in ("scheduler.CreateSchedule", "scheduler.DeleteSchedule"):
            assert ours_calls[name] == naive_calls[name]
    # While the naive one reads more with history (one Query page still, but more bytes and read units)
    naive_short, naive_long = short.runs["naive"], long.runs["naive"]
    assert naive_long.meter.bytes_read > 2 * naive_short.meter.bytes_read
    assert naive_long.meter.rru > naive_short.meter.rru
