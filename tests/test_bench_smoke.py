"""The request-counting benchmark at a tiny size: AWS requests per event stay flat whatever the history."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
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
        # superseded, in ceil(entries / 10) PutEvents (the decide function's, or the log stream
        # function's on what the batch committed); each held follow-up got one schedule; each
        # superseded one had its schedule deleted and its log entry read at most once (to announce it)
        assert result.put_events_entries == result.events + result.cancellations
        assert result.calls_by_any_function("events", "PutEvents") == result.put_events_needed
        assert result.calls_by_any_function("scheduler", "CreateSchedule") == result.held
        assert result.calls_by_any_function("scheduler", "DeleteSchedule") == result.cancellations
        assert result.calls("dynamodb", "GetItem") <= result.cancellations
        # And the log stream function (when the log has a stream) counts once per stream batch
        assert result.stream_counts_once_per_batch
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
    # a day-page Query a day of the window at least, and the 500 entries 100 a BatchGetItem
    assert result.read_requests["day_page_queries"] >= result.days
    assert result.read_requests["batch_gets"] == 5
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
    # And the job's partitions, alone and side by side, replayed the same events, and the arithmetic
    # for 30 days of a million events a day is carried out from this run's rates
    assert result.scale is not None and result.scale.events == 500
    assert result.scale.pool_seconds > 0 and result.scale.per_partition_events_per_second > 0
    big = result.as_json()["at_scale_30_days_of_1m_a_day"]
    assert big["events"] == 30_000_000 and big["partitions"] == 16 * big["sub_partitions"] > result.scale.partitions
    # partitioned as the job's plan partitions that window: none over its planned share of memory
    assert big["events_per_partition"] <= big["max_events_per_partition"]
    # the same log split in 2 per shard replays every event once; at scale, a partition replays at
    # the measured rate and parses every row of the window's day pages at the measured cost
    assert result.scale.split_sub_partitions == 2 and sum(result.scale.split_events) == 500
    assert big["events_per_second_per_partition"] == result.scale.replay_events_per_second
    assert big["partition_page_seconds"] == 30_000_000 * result.scale.busy_row_seconds > 0
    assert big["wall_seconds"] >= big["partition_seconds"] > 0 and big["cost_usd"]["total"] > 0


def test_the_naive_baseline_costs_more_requests_and_its_reads_grow_with_history() -> None:
    from bench import naive

    # Given the same 60 events through this design and through the naive Powertools-idempotency baseline
    costed = naive.measure_cost(events=60, lifecycle=False)  # the lifecycle: see the goals test
    # Then both decide the same, and the naive one makes more DynamoDB requests per event
    assert costed.same_decisions
    assert costed.ours.failed == costed.naive.failed == 0
    assert costed.naive.per_event()["dynamodb"] > costed.ours.per_event()["dynamodb"]
    # And both make the same lifecycle requests: a schedule per held follow-up, a deletion per superseded one
    for name in ("scheduler.CreateSchedule", "scheduler.DeleteSchedule"):
        assert costed.ours.meter.calls[name] == costed.naive.meter.calls[name]
    # And at histories of 1 and 20 past interactions, ours costs the same requests and read units per
    # decision, apart from those that follow the lifecycle (naive.LIFECYCLE): a longer history changes how
    # many follow-ups are held and superseded (fuller caps), so those are counted per follow-up instead
    short, long = naive.measure_histories((1, 20), customers=1, events_per_customer=10)
    assert short.same_decisions and long.same_decisions
    ours_short, ours_long = short.runs["ours"], long.runs["ours"]
    assert ours_long.steady_requests_per_decision == ours_short.steady_requests_per_decision
    assert ours_long.steady_rru == ours_short.steady_rru
    for level in (short, long):
        ours_calls, naive_calls = level.runs["ours"].meter.calls, level.runs["naive"].meter.calls
        # at most one read of the cancelled log entry per superseded follow-up (none when the log's
        # stream brings its image), and schedules as the naive one makes
        assert ours_calls["dynamodb.GetItem"] <= ours_calls["scheduler.DeleteSchedule"]
        for name in ("scheduler.CreateSchedule", "scheduler.DeleteSchedule"):
            assert ours_calls[name] == naive_calls[name]
    # While the naive one reads more with history (one Query page still, but more bytes and read units)
    naive_short, naive_long = short.runs["naive"], long.runs["naive"]
    assert naive_long.meter.bytes_read > 2 * naive_short.meter.bytes_read
    assert naive_long.meter.rru > naive_short.meter.rru


def test_index_writes_follow_dynamodb_rules_for_each_projection() -> None:
    from bench.cost import IndexDefinition, index_writes

    # Given an ALL index and a sparse KEYS_ONLY index on a table keyed by decision_id
    everything = IndexDefinition("by-day", ("day_shard", "decided_at"), None)
    keys_only = IndexDefinition(
        "outbox", ("outbox_shard", "decided_at"), frozenset({"decision_id", "outbox_shard", "decided_at"})
    )
    big = {"S": "x" * 1500}  # 1.5 KB of prose: 2 WRU where it is projected
    item = {"decision_id": {"S": "d"}, "day_shard": {"S": "1"}, "decided_at": {"S": "t"}, "doc": big}
    marked = {**item, "outbox_shard": {"S": "2"}}
    # Then a new item is put into each index it has the keys of, billed on what the index projects
    assert index_writes(everything, None, item) == [2]
    assert index_writes(keys_only, None, item) == []
    assert index_writes(keys_only, None, marked) == [1]
    # And an update of an attribute a KEYS_ONLY index does not project costs it nothing, an ALL index one write
    changed = {**marked, "doc": {"S": "y" * 10}}
    assert index_writes(keys_only, marked, changed) == []
    assert index_writes(everything, marked, changed) == [1]
    # And removing an index key deletes the entry; changing one deletes the old entry and puts the new one
    assert index_writes(keys_only, marked, item) == [1]
    assert index_writes(everything, item, {**item, "day_shard": {"S": "9"}}) == [2, 2]
    # And a delete removes the item from each index it was in; an unchanged item writes nothing
    assert index_writes(everything, item, None) == [2]
    assert index_writes(everything, item, dict(item)) == []


def test_make_bench_writes_every_goal_with_a_same_run_baseline_and_a_verdict(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from bench import goals, run

    # Given a tiny `make bench` (engine, requests, cost with the lifecycle; the long parts skipped)
    output = tmp_path / "latest.json"
    code = run.main(
        [
            *("--events", "10", "--histories", "1", "5", "--long-history-customers", "2"),
            *("--engine-events", "200", "--repeats", "1", "--cost-events", "20"),
            *("--history-levels", "", "--output", str(output)),
            *("--skip-imports", "--skip-local-stack", "--skip-simulation", "--skip-replay"),
        ]
    )
    assert code == 0
    report = json.loads(output.read_text())
    # Then every goal of the issue is there under its stable key, with value, target, baseline, verdict
    found = report["goals"]
    assert list(found) == list(goals.KEYS)
    for entry in found.values():
        assert {"value", "target", "baseline", "verdict"} <= set(entry)
        assert entry["verdict"] in ("pass", "fail")
        assert entry["target"].split()[0] in ("<=", ">=")
    # And the measured ones have a value and a baseline from this run; the skipped ones say so and fail
    measured = (
        "cost_ratio_vs_naive",
        "dynamodb_usd_per_million",
        "engine_ratio_vs_validation",
        "requests_per_event",
        "history_flatness",
    )
    for key in measured:
        assert isinstance(found[key]["value"], float) and found[key]["value"] > 0
        assert not found[key]["baseline"].startswith("not measured")
    for key in set(goals.KEYS) - set(measured):
        assert found[key]["value"] is None and found[key]["verdict"] == "fail"
        assert found[key]["baseline"].startswith("not measured")
    # And the cost goals carry a second verdict with the lifecycle priced
    for key in ("cost_ratio_vs_naive", "dynamodb_usd_per_million"):
        assert found[key]["with_lifecycle"]["verdict"] in ("pass", "fail")
    # (held follow-ups' schedules fired, released or cancelled the same way by both designs)
    assert report["cost"]["held_follow_ups_fired"] > 0
    assert report["cost"]["lifecycle_fired"] and report["cost"]["same_settlements"]
    # And the goals are printed as a table at the end
    printed = capsys.readouterr().out
    assert "Goals (issue 12)" in printed
    assert all(key in printed for key in goals.KEYS)


def test_the_replay_flatness_stack_neither_reads_nor_writes_the_users_kept_state(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import replay_flatness

    # Given a user whose `governor local` keeps its state in their state folder
    user_state = tmp_path / "user-state"
    user_state.mkdir()
    kept = user_state / "moto-state.pickle"
    kept.write_bytes(b"the user's own kept stack")
    monkeypatch.setenv("GOVERNOR_STATE_DIR", str(user_state))
    folder = tmp_path / "bench"
    folder.mkdir()
    # When the bench's replay-flatness stack starts and stops
    with replay_flatness.local_stack(folder) as (url, _, _):
        health = replay_flatness._get(f"{url}/health")
    # Then it started empty, kept nothing, and left the user's state as it was
    assert health["status"] == "ok"
    said = (folder / "governor-local.err").read_text()
    assert "state: ephemeral, nothing is kept" in said and "restored" not in said
    assert kept.read_bytes() == b"the user's own kept stack"
    assert sorted(p.name for p in user_state.iterdir()) == ["moto-state.pickle"]


def test_the_cost_workload_is_one_day_of_a_large_contact_centre_with_histories() -> None:
    from bench.aws_path import PRESENT
    from bench.workload import HISTORY_SETTLED, contact_centre_day
    from shared.adapters.clock import EventClock

    # Given the cost bench's workload for 300 customers
    day = contact_centre_day(300, PRESENT + timedelta(hours=7), seed=11)

    def closed(detail: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(detail["closed_at"]).astimezone(UTC)

    # Then every measured event closes, and is decided on the event clock, inside one UTC day, in time order
    start = day.day
    assert start == PRESENT and start.tzinfo is not None
    times = [closed(d) for d in day.measured]
    assert times == sorted(times)
    assert all(start <= t and t + EventClock.delay < start + timedelta(days=1) for t in times)
    assert times[-1] - times[0] > timedelta(hours=20)  # spread over the day, not bunched
    # And there is exactly one measured event per customer
    customers = [d["customer_id"] for d in day.measured]
    assert len(customers) == len(set(customers)) == day.customers == 300
    # And every customer has 1-3 past interactions within the 90 days before it, settled before the day
    past = Counter(d["customer_id"] for d in day.past)
    assert set(past) == set(customers)
    assert set(past.values()) == {1, 2, 3}
    before = [closed(d) for d in day.past]
    assert before == sorted(before)
    assert all(start - timedelta(days=90) <= t < start - HISTORY_SETTLED for t in before)
    # And it is deterministic, and every event id is unique
    assert contact_centre_day(300, PRESENT, seed=11) == day
    assert len({d["event_id"] for d in (*day.past, *day.measured)}) == len(day.past) + 300


def test_the_cost_bench_drains_the_stream_at_the_production_window_with_the_lifecycle() -> None:
    from bench import naive, shards, workload
    from bench.aws_path import PRESENT

    # Given 80 customers' interactions of one day, after their histories, with the lifecycle
    costed = naive.measure_cost(events=80, lifecycle=True)
    ours = costed.ours
    assert costed.customers == 80 and costed.past_events > 80
    # Then each reader's batches hold what one of the full log's 40 shards gathers in its window:
    # counting ~87 events (300 s), publishing ~1.45 (5 s), not a decide batch of ten
    assert shards.stream_batch_events(shards.COUNTING) > 50
    assert shards.stream_batch_events(shards.PUBLISHING) < 2
    # So the 80 events take one count batch and ~55 publishing invocations (the latter priced)
    assert 80 / 2 < ours.stream.count < 80
    # And both designs still decide, release and cancel exactly the same, nothing failing
    assert costed.held > 0
    assert costed.same_decisions and costed.same_settlements
    assert ours.failed == costed.naive.failed == 0
    # And firing the due schedules at the drains publishes what firing before every decide batch does
    # (the stream drained after each batch): the window changes what is billed, not what happens
    day = workload.contact_centre_day(80, PRESENT)
    every, _ = naive._run("ours", day.past, day.measured, lifecycle=True, every_batch=True)
    assert every.meter.published == ours.meter.published
    assert every.lifecycle.published == ours.lifecycle.published
    assert every.releases.count == ours.releases.count == costed.held

    # While counting (once per count batch) costs less per event at the window
    def counting(run: naive.Run) -> float:
        return sum(wru for table, wru in run.meter.wru_by.items() if table.endswith("StatsTable"))

    assert counting(ours) < counting(every)
