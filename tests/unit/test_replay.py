"""The simulation's replay by customer partition: partitions add up to the whole, ledgers are warmed
from the log before the window, and one partition answers as an estimate with its error."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from bench import simulation as bench
from shared.adapters import decision_log
from shared.adapters.log_replay import ItemsReader, decode
from shared.domain import engine
from shared.domain.contacts import ContactLedger
from shared.domain.decision import Action, State
from shared.domain.events import InteractionClosed
from shared.domain.policy import Policy, default_policy
from shared.domain.replay import LoggedDecision, PartitionReplay, PreferenceChange, Timeline
from shared.usecases import simulation
from tests.conftest import detail

WINDOW_START = datetime(2026, 11, 1, tzinfo=UTC)
YEAR_CAP = {"caps": {"survey": [{"max": 1, "days": 365}]}}


def policy(document: dict[str, Any], version: int = 0) -> Policy:
    return Policy.model_validate({**document, "version": version})


def logged(n: int, customer: str, closed: datetime, ledger: ContactLedger, rules: Policy, **fields: Any) -> Any:
    """What the log holds for one event decided live (closed a minute before it was decided)."""
    event = InteractionClosed.model_validate(
        detail(
            event_id=f"e-{n}",
            interaction_id=f"i-{n}",
            customer_id=customer,
            closed_at=closed.isoformat(),
            **fields,
        )
    )
    decision = engine.decide(event, ledger, rules, closed + timedelta(minutes=1))
    if decision.state is State.PENDING:  # released at its send time, as its schedule does
        decision = decision.with_state(State.RELEASED, None, decision.send_at or decision.decided_at)
    return decision, decode(decision_log.to_item(decision, timedelta(days=400)))


def test_a_replayed_event_is_the_event_the_contract_validates() -> None:
    # Given a logged decision, read back without validating a model per item
    event = InteractionClosed.model_validate(detail(segment="vip", sentiment=-0.5, handle_seconds=30))
    decision = engine.decide(event, ContactLedger(event.customer_id), default_policy(), WINDOW_START)
    found = decode(decision_log.to_item(decision, timedelta(days=400)))
    # Then the event it rebuilds equals the validated one (as the log stores it: closed_at in UTC)
    again = found.event()
    assert again == InteractionClosed.model_validate({**event.model_dump(), "closed_at": event.closed_at})
    assert again.outcome is event.outcome and again.channel is event.channel  # the engine compares identities
    assert engine.decide(again, ContactLedger(event.customer_id), default_policy(), WINDOW_START) == decision


def test_a_year_cap_with_a_follow_up_before_the_window_blocks_in_the_window() -> None:
    # Given a policy of one survey per 365 days, and a customer surveyed 200 days before the window
    current = policy(YEAR_CAP)
    first, before = logged(1, "cust-y", WINDOW_START - timedelta(days=200), ContactLedger("cust-y"), current)
    ledger = ContactLedger("cust-y").after(first, current.ledger_retention, first.decided_at)
    # And solved again 10 days into the window: the log says SURVEY_CAP_REACHED
    _, inside = logged(2, "cust-y", WINDOW_START + timedelta(days=10), ledger, current)
    assert inside.reason == "SURVEY_CAP_REACHED"
    timeline = Timeline("cust-y", decisions=[inside], history=[before])
    # When the window is replayed under it and under a cap of one per 180 days
    replay = PartitionReplay(current, policy({"caps": {"survey": [{"max": 1, "days": 180}]}}), WINDOW_START, 20)
    replay.replay(timeline)
    # Then the current policy blocks as production did, and the shorter cap would have surveyed
    result = replay.result
    assert result.current.by_reason == {"SURVEY_CAP_REACHED": 1}
    assert result.candidate.by_reason == {"SURVEY_ELIGIBLE": 1}
    assert (result.agreement.matching, result.warm_up.approvals) == (1, 1)


def test_opt_outs_before_and_in_the_window_are_replayed_when_they_happened() -> None:
    # Given a customer who opted out of everything before the window (the log: OPTED_OUT in it)
    rules = default_policy()
    out = PreferenceChange("cust-o", WINDOW_START - timedelta(days=40), ("all",), "phone")
    opted = replace(ContactLedger("cust-o"), opt_outs=(engine_opt_out(out),))
    _, blocked = logged(1, "cust-o", WINDOW_START + timedelta(days=2), opted, rules)
    # And lifted it in the window, then was surveyed
    back = PreferenceChange("cust-o", WINDOW_START + timedelta(days=5), (), "web")
    _, surveyed = logged(2, "cust-o", WINDOW_START + timedelta(days=9), ContactLedger("cust-o"), rules)
    assert (blocked.reason, surveyed.reason) == ("OPTED_OUT", "SURVEY_ELIGIBLE")
    # When the window is replayed
    replay = PartitionReplay(rules, rules, WINDOW_START, 20)
    replay.replay(Timeline("cust-o", decisions=[blocked, surveyed], changes=[out, back]))
    # Then both are decided as logged: the opt-out held until it was lifted
    assert replay.result.current.by_reason == {"OPTED_OUT": 1, "SURVEY_ELIGIBLE": 1}
    assert replay.result.agreement.matching == 2
    assert replay.result.warm_up.preference_changes == 1


def engine_opt_out(change: PreferenceChange) -> Any:
    from shared.domain.contacts import OptOut

    return OptOut(change.kinds[0], change.source, change.at)


@cache
def generated(events: int = 1_200, days: int = 20) -> tuple[list[dict[str, Any]], datetime]:
    log = bench.make_log(events, days)
    return log.items, log.end + timedelta(minutes=1)


def job(days: int = 20) -> simulation.JobPlan:
    _, now = generated()
    return simulation.plan(
        {"policy": bench.candidate_document(), "days": days, "sample_size": 5},
        default_policy(),
        now,
    )


def test_partition_results_merged_through_json_equal_the_single_process_simulation() -> None:
    # Given a generated log of 1,200 decisions, the window covering it
    items, _ = generated()
    plan = job()

    # When every partition runs alone and its result crosses a process boundary as JSON
    def alone(partition: int) -> Any:
        result = simulation.run_partition(json.loads(json.dumps(plan.as_json())), partition, ItemsReader(items))
        return json.loads(json.dumps(result.as_json()))

    results = [alone(p) for p in range(simulation.PARTITIONS)]
    merged = simulation.merge(plan.as_json(), results)
    whole = simulation.merge(plan, [simulation.run_partitions(plan, range(simulation.PARTITIONS), ItemsReader(items))])
    # Then the merged answer is the single-process one, count for count and sample for sample
    assert {k: v for k, v in merged.items() if k != "seconds"} == {k: v for k, v in whole.items() if k != "seconds"}
    assert merged["events"] == len(items)
    # And it is what today's code path (kept in the bench) answers: the log starts in the window
    reference = bench.reference_simulate(
        bench.reference_parse(items), default_policy(), plan.policies[1], sample_size=plan.sample_size
    )
    for name in ("events", "current", "candidate", "difference", "changed_events", "changed_customers_sample"):
        assert merged[name] == reference[name], name
    # And the current policy replayed decides every logged decision as logged
    assert merged["current"]["by_action"] == merged["logged"]["by_action"]
    assert merged["current_vs_logged"]["differing"] == 0


def test_one_partition_estimates_the_whole_within_its_error() -> None:
    # Given the generated log and its full simulation
    items, _ = generated()
    plan = job()
    whole = simulation.merge(plan, [simulation.run_partitions(plan, range(simulation.PARTITIONS), ItemsReader(items))])
    # When partition 0 alone (1/16 of the customers, by hash) answers as an estimate
    sample = simulation.run_partition(plan, simulation.SAMPLE_PARTITION, ItemsReader(items))
    estimate = simulation.estimate(plan, [sample])
    # Then it read about 1/16 of the customers, and scaled its counts by 16
    assert estimate["estimate"]["share_of_customers"] == 1 / 16
    assert 0 < sample.replayed.customers < len({i["customer_id"]["S"] for i in items}) / 8
    assert estimate["events"] == round(sample.replayed.events * 16)
    # And every count of the whole lies within 3 standard errors of its estimate (and the 95 % interval
    # is the estimate +- 1.96 of them)
    errors, intervals = estimate["estimate"]["standard_error"], estimate["estimate"]["interval_95"]
    for side in ("current", "candidate"):
        for action, true in whole[side]["by_action"].items():
            name = f"{side}.by_action.{action}"
            guess = estimate[side]["by_action"].get(action, 0)
            assert errors[name] > 0, name
            assert abs(guess - true) <= 3 * errors[name], (name, guess, true, errors[name])
            assert intervals[name][0] <= guess <= intervals[name][1]
    assert abs(estimate["events"] - whole["events"]) <= 3 * errors["events"]


def test_the_synchronous_window_is_refused_beyond_its_limit_with_the_job_named() -> None:
    from shared.domain.errors import InvalidInput

    try:
        simulation.plan({"policy": {}, "days": 120}, default_policy(), WINDOW_START, max_days=simulation.SYNC_MAX_DAYS)
    except InvalidInput as error:
        assert "POST /policy/simulations" in error.fields[0]["message"]
    else:
        raise AssertionError("a 120-day synchronous window was accepted")
    # And a job plans any window up to the log's retention
    plan = simulation.plan({"policy": {}, "days": 400}, default_policy(), WINDOW_START)
    assert plan.window_start == datetime(2025, 9, 27, tzinfo=UTC)
    assert plan.warm_up_start == plan.window_start - default_policy().ledger_retention


def test_a_logged_decision_reads_back_with_its_lifecycle_from_the_item() -> None:
    # Given a survey logged pending, then released (the item's own attributes change, not doc)
    event = InteractionClosed.model_validate(detail())
    decision = engine.decide(event, ContactLedger(event.customer_id), default_policy(), WINDOW_START)
    assert decision.state is State.PENDING
    item = decision_log.to_item(decision, timedelta(days=400))
    released_at = WINDOW_START + timedelta(hours=3)
    item.update(decision_log.state_attributes(decision.with_state(State.RELEASED, None, released_at)))
    # Then the replay reads its send time, its state and when it changed
    found: LoggedDecision = decode(item)
    assert (found.action, found.state, found.state_changed_at) == (Action.SURVEY, State.RELEASED, released_at)
    assert found.send_at == decision.send_at and found.interaction_id == decision.interaction_id


def test_the_unexplained_sample_names_the_earliest_differences_whatever_the_customer_order() -> None:
    # Given 15 customers, each with one decision logged as OPTED_OUT under the current version, while the
    # log holds none of their opt-outs (a difference the replay cannot explain)
    rules = default_policy()
    timelines = []
    for n in range(15):
        customer = f"cust-u{n:02d}"
        out = PreferenceChange(customer, WINDOW_START - timedelta(days=40), ("all",), "phone")
        opted = replace(ContactLedger(customer), opt_outs=(engine_opt_out(out),))
        _, blocked = logged(100 + n, customer, WINDOW_START + timedelta(hours=n), opted, rules)
        timelines.append(Timeline(customer, decisions=[blocked]))
    # When the customers are replayed latest first (as a partition may meet them)
    replay = PartitionReplay(rules, rules, WINDOW_START, 20)
    for timeline in reversed(timelines):
        replay.replay(timeline)
    # Then all 15 are unexplained, and the sample names the earliest ten, in time order
    agreement = replay.result.agreement
    assert agreement.unexplained == 15
    assert [e["customer_id"] for e in agreement.unexplained_sample] == [f"cust-u{n:02d}" for n in range(10)]


def test_the_partitions_of_a_job_start_their_day_reads_on_different_days() -> None:
    # Given a 30-day window and the 16 partitions of a job
    from shared.adapters.log_replay import day_reads

    start = datetime(2026, 5, 1, tzinfo=UTC)
    end = start + timedelta(days=30) - timedelta(microseconds=1)
    # When each partition lists the days it reads
    orders = {p: [read.day for read in day_reads(start, end, [p])] for p in range(16)}
    # Then each reads every day of the window once, and no two start on the same day's page key
    assert all(sorted(days) == sorted(orders[0]) and len(set(days)) == 30 for days in orders.values())
    assert len({days[0] for days in orders.values()}) == 16
    # And a read of every partition at once (the synchronous route) keeps the calendar order
    everything = [read.day for read in day_reads(start, end, range(16))]
    assert everything == sorted(everything)
