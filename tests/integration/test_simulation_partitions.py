"""POST /policy/simulate over the decision log on moto: partitions read by customer hash from the
day pages, ledgers warmed from the log before the window (follow-ups and opt-outs), the days of
log found, and the current policy's counts against what was logged, on the replayed sample.

Decisions made live reach the day pages through the log stream function, as deployed: each test
drains the stream (tests.conftest.drain_stream) before it simulates."""

from __future__ import annotations

import heapq
import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from bench import simulation as bench
from shared import wiring
from shared.adapters.clock import FixedClock
from shared.adapters.log_replay import LogReader
from shared.domain.events import InteractionClosed
from shared.domain.policy import default_policy
from shared.usecases import simulation
from tests.conftest import NOW, drain_stream
from tests.integration.test_policy_api import apply, call, policy_environment
from tests.integration.test_simulation_lifecycle import decide_live, release_live

__all__ = ["policy_environment"]  # the module's autouse fixture: policy function environment

SAMPLE = Path(__file__).resolve().parents[2] / "infra" / "sample-events.ndjson"


def reason_of(decision_id: str) -> str:
    decision = wiring.store().get_decision(decision_id)
    assert decision is not None
    return str(decision.reason)


def test_a_year_cap_with_a_survey_before_the_window_blocks_in_the_window(aws: Any) -> None:
    # Given one survey per 365 days, and a customer surveyed (and the survey sent) 200 days ago
    assert apply({"caps": {"survey": [{"max": 1, "days": 365}]}}, based_on=0)[0] == 200
    first = decide_live("y1", "cust-y", NOW - timedelta(days=200))
    assert release_live(first, NOW - timedelta(days=200) + timedelta(hours=3)) == "released"
    # And solved again 10 days ago: production refused the survey on the year's cap
    assert reason_of(decide_live("y2", "cust-y", NOW - timedelta(days=10))) == "SURVEY_CAP_REACHED"
    drain_stream(aws)
    wiring.use_clock(FixedClock(NOW))
    # When the last 30 days are simulated against one survey per 180 days
    status, _, report = call(
        "POST", "/policy/simulate", {"policy": {"caps": {"survey": [{"max": 1, "days": 180}]}}, "days": 30}
    )
    # Then the current policy blocks as production did: its ledger held the survey of 200 days ago
    assert status == 200, report
    assert report["current"]["by_reason"] == {"SURVEY_CAP_REACHED": 1}
    assert report["log"]["warm_up"]["approvals"] == 1
    assert report["current_vs_logged"]["matching"] == 1
    # And under 180 days it would have been a survey
    assert report["candidate"]["by_reason"] == {"SURVEY_ELIGIBLE": 1}
    assert report["difference"]["by_action"] == {"none": -1, "survey": 1}


def test_opt_outs_logged_before_and_in_the_window_are_replayed(aws: Any) -> None:
    # Given cust-o opted out of everything 45 days ago, and solved an issue 10 days ago
    prefs = wiring.preferences()
    prefs.set("cust-o", {"all": True}, "phone", "agent-1", NOW - timedelta(days=45))
    assert reason_of(decide_live("o1", "cust-o", NOW - timedelta(days=10))) == "OPTED_OUT"
    # And cust-p opted out of surveys 15 days ago, was asked nothing 10 days ago, lifted it 8 days ago
    prefs.set("cust-p", {"survey": True}, "web", "agent-2", NOW - timedelta(days=15))
    assert reason_of(decide_live("p1", "cust-p", NOW - timedelta(days=10))) == "OPTED_OUT"
    prefs.set("cust-p", {"survey": False}, "web", "agent-2", NOW - timedelta(days=8))
    assert reason_of(decide_live("p2", "cust-p", NOW - timedelta(days=5))) == "SURVEY_ELIGIBLE"
    drain_stream(aws)
    wiring.use_clock(FixedClock(NOW))
    # When the last 30 days are simulated
    status, _, report = call("POST", "/policy/simulate", {"policy": {}, "days": 30})
    # Then the current policy shows the opt-outs the log has, each while it was in force
    assert status == 200, report
    assert report["current"]["by_reason"] == {"OPTED_OUT": 2, "SURVEY_ELIGIBLE": 1}
    assert report["logged"]["by_reason"] == report["current"]["by_reason"]
    assert report["current_vs_logged"]["differing"] == 0
    assert report["log"]["warm_up"]["preference_changes"] == 1  # cust-o's, before the window


def test_a_window_longer_than_the_log_says_how_many_days_it_found(aws: Any) -> None:
    # Given decisions logged on three days of the last week only
    for n, days_ago in enumerate((6, 4, 4, 2)):
        decide_live(f"d{n}", f"cust-d{n}", NOW - timedelta(days=days_ago))
    drain_stream(aws)
    wiring.use_clock(FixedClock(NOW))
    # When 30 days are simulated
    status, _, report = call("POST", "/policy/simulate", {"policy": {}, "days": 30})
    # Then the answer says the log covers 3 of the window's 31 days, from its first to its last
    assert status == 200, report
    log = report["log"]
    first = (NOW - timedelta(days=6)).date().isoformat()
    assert (log["first_day"], log["last_day"]) == (first, (NOW - timedelta(days=2)).date().isoformat())
    assert (log["days_with_decisions"], log["window_days"]) == (3, 31)
    assert report["window"]["start"] == "2026-10-24T00:00:00Z"
    # And warns that the window is longer than the log
    assert any("longer than the log" in w and first in w for w in report["warnings"]), report["warnings"]
    # And a window beyond the synchronous limit is refused, naming the job
    status, _, body = call("POST", "/policy/simulate", {"policy": {}, "days": 120})
    assert status == 400
    assert body["fields"][0]["field"] == "days"


def test_the_replayed_sample_current_counts_equal_what_was_logged(aws: Any) -> None:
    # Given the sample's first nine days decided live in time order (each as of its close + 30 s),
    # every held follow-up released or cancelled at its send time first, as the local stack does
    details = sorted(
        (json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()),
        key=lambda d: datetime.fromisoformat(d["closed_at"]),
    )
    end = datetime(2026, 11, 4, tzinfo=UTC)
    held: list[tuple[datetime, str]] = []
    logged: dict[str, Any] = {}
    for raw in details:
        event = InteractionClosed.model_validate(raw)
        at = event.closed_at.astimezone(UTC) + timedelta(seconds=30)
        if at >= end:
            break
        while held and held[0][0] <= at:
            due, decision_id = heapq.heappop(held)
            release_live(decision_id, due)
        wiring.use_clock(FixedClock(at))
        decision = wiring.governor().decide(event).decision
        logged[decision.decision_id] = decision
        if decision.state == "pending" and decision.send_at is not None:
            heapq.heappush(held, (decision.send_at, decision.decision_id))
    while held:
        due, decision_id = heapq.heappop(held)
        release_live(decision_id, due)
    drain_stream(aws)
    now = end + timedelta(hours=12)
    wiring.use_clock(FixedClock(now))
    # When the last 3 days are simulated (from 2026-11-01, six days after the sample begins)
    status, _, report = call("POST", "/policy/simulate", {"policy": {}, "days": 3})
    assert status == 200, report
    # Then the current policy's counts are the logged ones, action by action and reason by reason
    start = datetime(2026, 11, 1, tzinfo=UTC)
    window = [d for d in logged.values() if d.decided_at >= start]
    assert report["events"] == len(window) > 40
    assert report["current"]["by_action"] == dict(Counter(str(d.action) for d in window))
    assert report["current"]["by_reason"] == dict(Counter(str(d.reason) for d in window))
    assert report["current_vs_logged"]["differing"] == 0
    # And the ledgers were warmed with the approvals of the days before
    assert report["log"]["warm_up"]["approvals"] > 0
    # And the cause of the reported mismatch: started empty, the replay surveys more than was logged
    plan = simulation.plan({"policy": {}, "days": 3}, wiring.policy_store().current().policy, now)
    cold = replace(plan, warm_up_start=plan.window_start)
    reader = LogReader(aws.names["DecisionLogTable"], aws.names["StatsTable"], client=boto3.client("dynamodb"))
    empty = simulation.merge(cold, [simulation.run_partitions(cold, range(plan.partitions), reader)])
    logged_surveys = report["logged"]["by_action"]["survey"]
    assert empty["current"]["by_action"]["survey"] > logged_surveys == report["current"]["by_action"]["survey"]
    assert empty["current_vs_logged"]["unexplained"] > 0


def test_partitions_read_alone_and_merged_equal_the_single_process_answer(aws: Any) -> None:
    # Given 120 logged decisions over 3 days, listed on their days' pages
    log = bench.make_log(120, days=3)
    dynamodb = boto3.client("dynamodb")
    bench.write_log(dynamodb, aws.names["DecisionLogTable"], aws.names["StatsTable"], log.items)
    now = log.end + timedelta(minutes=1)
    request = {"policy": bench.candidate_document(), "days": 3, "sample_size": 5}
    plan = simulation.plan(request, default_policy(), now)
    reader = LogReader(aws.names["DecisionLogTable"], aws.names["StatsTable"], client=dynamodb)
    # When each partition reads and replays its customers alone, and the results are merged
    progress: list[dict[str, Any]] = []
    parts = [simulation.run_partition(plan, p, reader, progress.append) for p in range(plan.partitions)]
    merged = simulation.merge(plan.as_json(), [p.as_json() for p in parts])
    # Then the answer is the single-process one
    pages, gets = reader.pages.queries, reader.batch_gets
    whole = simulation.simulate_window(request, default_policy(), now, reader)
    assert {k: v for k, v in merged.items() if k != "seconds"} == {k: v for k, v in whole.items() if k != "seconds"}
    assert merged["events"] == len(log.items)
    assert merged["current"]["by_action"] == log.actions
    # And the single process read each day's pages once (a Query a day of the window: a page holds
    # up to an hour of decisions) and the entries 100 at a time
    assert reader.pages.queries - pages == whole["log"]["window_days"] == 4
    assert reader.batch_gets - gets == 2
    # And a partition fetched only its own customers' entries: one BatchGetItem each (< 100 entries)
    assert [p.batch_gets for p in parts] == [1 if p.replayed.events else 0 for p in parts]
    # And each partition reported its progress, ending with every event it read replayed
    finals = [p for p in progress if p["events_replayed"] == p["events"]]
    assert sum(p["events"] for p in finals) == len(log.items)
