"""`make bench`: engine speed against pydantic validation, handlers' cold imports, and AWS requests per
event through the queue path for customers with a short and a long history; then the whole local
stack under load next to moto's own request rate (--skip-local-stack), a policy simulation over a
busy decision log (--skip-simulation), requests and list-price cost against a naive design, with
the held follow-ups' releases (--skip-cost), and the local replay's flatness (--skip-replay).
Ends with issue 12's goals, each against a baseline measured in the same run (bench/goals.py), and
writes everything to bench/results/latest.json (`goals` under stable keys).

The machines this runs on are shared and noisy: quote ratios (engine ÷ validation, long ÷ short
history), not absolute times. Request counts and capacity units are exact and do not depend on the
machine. Sizes are chosen so each figure means what it says at a fraction of the time (printed
first as `sizes:`): a ratio that does not depend on the size is measured on a smaller population
(cost per event: one day of 2,000 customers with one interaction each and a history; the local
stack's rate: 3,000 events, its flatness up to 10,000 in part 6); a figure defined at a size is
measured at it (simulation: 100,000 events; replay flatness: the 10,000th event).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from bench import (
    aws_path,
    cold_imports,
    cost,
    engine_speed,
    goals,
    local_stack,
    naive,
    replay_flatness,
    shards,
    simulation,
    simulation_scale,
)
from bench.emulator import EMULATOR_NOTES

T = TypeVar("T")
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
WIDTH = 104


def machine() -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    found: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model() or platform.processor() or "unknown",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "packages": {},
    }
    for package in ("pydantic", "pydantic-core", "boto3", "botocore", "moto", "aws-lambda-powertools"):
        try:
            found["packages"][package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found["packages"][package] = None
    return found


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _ratio(last: float, first: float) -> str:
    return f"{last / first:.2f}" if first else "-"


def engine_table(result: engine_speed.EngineResult) -> list[str]:
    total = sum(result.actions.values()) or 1
    mix = ", ".join(f"{a} {n / total:.0%}" for a, n in sorted(result.actions.items()))
    bands = sum(result.ledger_sizes.values()) or 1
    order = ("empty", "1-3", "4-13", "30+")
    ledgers = ", ".join(f"{b} {result.ledger_sizes.get(b, 0) / bands:.0%}" for b in order)
    return [
        f"1. Pure engine, in process ({_n(result.events)} varied pre-parsed events; warm-up, then best of "
        f"{result.repeats}, gc off while timed)",
        f"   {'engine decide(event, ledger, policy, now)':<46}{_n(result.engine_per_second):>12} decisions/s"
        f"{1e6 / result.engine_per_second:>10.1f} µs each",
        f"   {'InteractionClosed.model_validate (baseline)':<46}{_n(result.validation_per_second):>12} events/s   "
        f"{1e6 / result.validation_per_second:>10.1f} µs each",
        f"   {'ratio engine ÷ validation':<46}{result.ratio:>12.3f}   <- the figure to quote",
        f"   decisions: {mix} | ledgers: {ledgers} follow-ups",
    ]


Row = tuple[str, Callable[[aws_path.PopulationResult], str], Callable[[aws_path.PopulationResult], float] | None]


def aws_table(results: Sequence[aws_path.PopulationResult]) -> list[str]:
    first, last = results[0], results[-1]
    label_width, column = 44, 25
    ratio_title = f"{last.population.history:,} ÷ {first.population.history:,}"
    head = f"   {'':<{label_width}}" + "".join(f"{r.population.label:>{column}}" for r in results)
    head += f"{ratio_title:>12}" if len(results) > 1 else ""

    rows: list[Row] = [
        (
            "customers x measured events",
            lambda r: f"{r.population.customers:,} x {r.population.events_per_customer:,}",
            None,
        ),
        ("past interactions decided first", lambda r: _n(r.history_events), None),
        ("follow-ups approved / customer, all time", lambda r: f"{r.approved_per_customer:.1f}", None),
        ("batches of 10 (handler invocations)", lambda r: _n(r.batches), None),
        ("approved / suppressed", lambda r: f"{r.approvals:,} / {r.suppressions:,}", None),
        ("DynamoDB requests / event", lambda r: f"{r.dynamodb_per_event:.3f}", lambda r: r.dynamodb_per_event),
        ("  write requests / event", lambda r: f"{r.writes_per_event:.3f}", lambda r: r.writes_per_event),
        ("    PutItem (suppression)", lambda r: _n(r.calls("dynamodb", "PutItem")), None),
        ("    TransactWriteItems (approval)", lambda r: _n(r.calls("dynamodb", "TransactWriteItems")), None),
        ("  BatchGetItem / batch", lambda r: f"{r.batch_gets_per_batch:.2f}", lambda r: r.batch_gets_per_batch),
        ("EventBridge PutEvents / batch", lambda r: f"{r.put_events_per_batch:.2f}", lambda r: r.put_events_per_batch),
        ("EventBridge PutEvents / event", lambda r: f"{r.put_events_per_event:.3f}", lambda r: r.put_events_per_event),
        ("  entries published", lambda r: _n(r.put_events_entries), None),
        ("  PutEvents needed: ceil(entries/10) per batch", lambda r: _n(r.put_events_needed), None),
        ("held (CreateSchedule each)", lambda r: _n(r.held), None),
        ("log stream function invocations", lambda r: _n(r.stream_invocations), None),
        (
            "superseded (GetItem + DeleteSchedule each)",
            lambda r: (
                f"{r.cancellations:,}: {r.calls('dynamodb', 'GetItem'):,} + "
                f"{r.calls_by_any_function('scheduler', 'DeleteSchedule'):,}"
            ),
            None,
        ),
        (
            "log stream function requests / event",
            lambda r: f"{sum(r.stream_requests.values()) / r.events:.3f}",
            None,
        ),
        ("other product requests (SQS SendMessage...)", lambda r: _n(sum(r.other_requests.values())), None),
        ("all product requests / event", lambda r: f"{r.requests_per_event:.3f}", lambda r: r.requests_per_event),
        ("HTTP attempts / request", lambda r: f"{r.attempts_per_request:.2f}", None),
        ("bytes sent + received / event", lambda r: _n(r.bytes_per_event), lambda r: r.bytes_per_event),
        ("largest ledger: follow-ups kept", lambda r: _n(r.ledger_entries_max), None),
        ("largest ledger: item size (DynamoDB JSON)", lambda r: f"{r.ledger_bytes_max / 1000:.1f} kB", None),
        ("time / decision (handler wall)", lambda r: f"{r.ms_per_decision:.2f} ms", lambda r: r.ms_per_decision),
        ("  in emulated AWS calls", lambda r: f"{r.ms_in_aws_per_decision:.2f} ms", lambda r: r.ms_in_aws_per_decision),
        (
            "  product code outside AWS calls",
            lambda r: f"{r.ms_outside_aws_per_decision:.2f} ms",
            lambda r: r.ms_outside_aws_per_decision,
        ),
    ]
    lines = [
        f"2. AWS requests per event: EventBridge bus -> rule -> SQS -> decide handler, "
        f"{_n(first.events)} events per population",
        head,
    ]
    for title, show, value in rows:
        line = f"   {title:<{label_width}}" + "".join(f"{show(r):>{column}}" for r in results)
        if value is not None and len(results) > 1:
            line += f"{_ratio(value(last), value(first)):>12}"
        lines.append(line)
    for r in results:
        harness = ", ".join(f"{name} {n}" for name, n in r.harness.items())
        lines.append(f"   not counted, the harness's own calls ({r.population.label}):")
        lines.append(f"     {harness}")
    lines += [f"   {line}" for line in verdicts(results)]
    return lines


def checks(results: Sequence[aws_path.PopulationResult]) -> dict[str, bool]:
    """The design goal, as exact request counts."""
    first = results[0]
    return {
        "one_dynamodb_write_per_event": all(
            r.calls("dynamodb", *aws_path.DYNAMODB_WRITES) == r.events for r in results
        ),
        "at_most_one_batch_get_item_per_batch": all(r.calls("dynamodb", "BatchGetItem") <= r.batches for r in results),
        # Issue 11: a batch also publishes FollowUpCancelled for each follow-up its decisions
        # superseded, so it may need more than one PutEvents (ten entries a request); the claim is
        # now ceil(entries / 10) per batch, with entries = decisions + cancellations, one schedule
        # per held follow-up, one GetItem and one schedule deletion per superseded one.
        "put_events_ceil_entries_over_10_per_batch": all(
            r.calls_by_any_function("events", "PutEvents") == r.put_events_needed for r in results
        ),
        "every_decision_and_cancellation_published": all(
            r.put_events_entries == r.events + r.cancellations for r in results
        ),
        "lifecycle_requests_per_held_or_superseded_follow_up": all(r.lifecycle_requests_match for r in results),
        "no_other_product_requests": all(not r.other_requests for r in results),
        "log_stream_counts_once_per_stream_batch": all(r.stream_counts_once_per_batch for r in results),
        "no_failed_records": all(r.failed_records == 0 and r.redelivered == 0 for r in results),
        "requests_per_event_flat": all(r.request_profile == first.request_profile for r in results),
        "product_clients_counted": all(r.clients_unchanged for r in results),
    }


def verdicts(results: Sequence[aws_path.PopulationResult]) -> list[str]:
    found = checks(results)
    failed = [name for name, ok in found.items() if not ok]
    goal = (
        "decide function: 1 DynamoDB write per event + 1 BatchGetItem per batch of 10; publishing (the decide or the"
        " log stream function): ceil(entries/10) PutEvents per batch, 1 CreateSchedule per held, 1 DeleteSchedule"
        " per superseded follow-up; log stream function: at most 1 receipt read + 1 count per stream batch"
    )
    return [f"design goal ({goal}): " + ("met" if not failed else "NOT met: " + ", ".join(failed))]


def notes(results: Sequence[aws_path.PopulationResult]) -> list[str]:
    return [
        "notes:",
        *(f"  - {note}" for note in EMULATOR_NOTES),
        "  - history: past interactions closed over the previous ~2.5 years, decided first through the production",
        "    Governor (fresh per batch of 10: one prefetch, one decide per event) with the event clock; counters reset",
        "    after it (with a log stream, its records are passed over: the history is not announced). Measured",
        "    events close over the next 100 days, also decided with the event clock; with a log stream, each of its",
        "    functions runs on what was committed once the decide batches since its last drain hold one shard's",
        f"    batching window at ~1 million events a day over {shards.log_shards()} shards (publishing: ~"
        f"{shards.stream_batch_events(shards.PUBLISHING):.1f},",
        f"    counting: ~{shards.stream_batch_events(shards.COUNTING):.0f} events a stream batch), their requests"
        " labelled `:log-stream`; the events",
        "    span days, so a count batch touches several days' counters (one in production).",
        "  - time in AWS calls is moto's (plus botocore's) and grows with item size; the ledger keeps a year of",
        "    follow-ups (Policy.ledger_retention), so its size is bounded by the caps, not by the history length.",
    ]


def _mix(actions: dict[str, int]) -> str:
    total = sum(actions.values()) or 1
    return ", ".join(f"{a} {actions.get(a, 0) / total:.0%}" for a in ("survey", "callback", "none"))


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def local_stack_table(r: local_stack.LocalStackResult) -> list[str]:
    label = 62
    drained = "queue drained" if r.drained else "queue NOT drained"
    stall = r.kept_alive_p50 - r.decide_p50
    lines = [
        f"3. Local stack under load (`governor local` in this process, event clock): {_n(r.events)} events of "
        f"{_n(r.customers)} customers over {r.days} days",
        f"   {'queue path: POST /events x100 -> bus -> SQS -> poller -> decide':<{label}}"
        f"{_n(r.events_per_second, 1):>10} events/s   {_n(r.accepted)} in {r.queue_seconds:.1f} s",
        f"   {'  process CPU over that time (all threads, one GIL)':<{label}}{r.queue_cpu_seconds:>10.1f} s",
        f"   {'  inside POST /events (validate, PutEvents, moto to SQS)':<{label}}{r.ingest_seconds:>10.1f} s",
        f"   {'  every event decided once':<{label}}{_yes(r.all_decided):>10}     {_n(r.logged)} logged, "
        f"{r.failed_records} failed records, {drained}",
        f"   {'  decisions':<{label}}{'':>10}     {_mix(r.actions)}",
        f"   {f'POST /decide, {len(r.decide_ms)} fresh events in sequence, a connection each':<{label}}"
        f"{r.decide_p50:>10.1f} ms p50 {r.decide_p99:>7.1f} ms p99   statuses {r.decide_statuses}",
        f"   {f'  {len(r.kept_alive_ms)} more on one kept-alive connection':<{label}}"
        f"{r.kept_alive_p50:>10.1f} ms p50"
        + (f"   <- {stall:+.0f} ms: a stall (Nagle + delayed ACK), not work" if r.kept_alive_stall else ""),
        f"   {'moto baseline: DynamoDB PutItem in a loop, same endpoint':<{label}}"
        f"{_n(r.moto_per_second, 1):>10} requests/s {r.moto_mean_ms:>6.2f} ms each",
        f"   {'ratio queue events/s ÷ moto requests/s':<{label}}{r.queue_to_moto:>10.3f}   "
        f"one event = {r.moto_requests_per_event:.1f} moto requests of wall time   <- the figure to quote",
        f"   {'ratio POST /decide p50 ÷ one moto request':<{label}}{r.decide_p50_to_moto:>10.1f}",
        f"   section time {r.total_seconds:.0f} s (start, {_n(r.events)} events, "
        f"{len(r.decide_ms) + len(r.kept_alive_ms)} decide calls, baseline, stop)",
        "   notes:",
    ]
    return lines + [f"     {line}" for line in local_stack.notes(r.max_backlog)]


def simulation_table(r: simulation.SimulationResult, seconds: float) -> list[str]:
    label = 62
    sim = r.report
    diff = sim["difference"]["by_action"]
    changes = ", ".join(f"{a} {diff.get(a, 0):+,}" for a in ("survey", "callback", "none"))
    read_label = f"read: logged_since, {r.days} days, {_n(r.read_events)} logged events" + (
        "" if r.read_full_size else f" (of {_n(r.events)})"
    )
    ratio = f"{r.to_engine:>10.3f}" if r.to_engine is not None else f"{'-':>10}"
    lambda_s, gateway_s = simulation.LAMBDA_TIMEOUT_SECONDS, simulation.API_GATEWAY_TIMEOUT_SECONDS
    memory = f", holding {r.replayables_mb:,.0f} MB" if r.replayables_mb is not None else ""
    lines = [
        f"4. Policy simulation (the work of POST /policy/simulate): {_n(r.events)} logged events of "
        f"{_n(r.customers)} customers over {r.days} days",
        f"   {'logged by the default policy':<{label}}{'':>10}     {_mix(r.logged_actions)}; "
        f"doc {r.doc_bytes_mean / 1000:.1f} kB, item {r.item_bytes_mean / 1000:.1f} kB",
        f"   {'written to moto with BatchWriteItem':<{label}}{r.write_seconds:>10.1f} s    "
        f"{_n(r.write_requests)} requests",
        f"   {read_label:<{label}}{r.read_seconds:>10.1f} s    {_n(r.read_per_second)} events/s, "
        f"{_n(r.read_queries)} Queries, {r.ms_per_query:.1f} ms each",
        f"   {f'parse: from_item + Replayable.of, all {_n(r.events)}, in memory':<{label}}"
        f"{r.parse_seconds:>10.1f} s    {_n(r.parse_per_second)} events/s{memory}",
        f"   {f'simulate(current, candidate), all {_n(r.events)}, in memory':<{label}}"
        f"{r.simulate_seconds:>10.1f} s    {_n(r.simulate_per_second)} events/s = "
        f"{_n(r.simulate_decisions_per_second)} engine decisions/s",
        f"   {'ratio simulate decisions/s ÷ pure engine decisions/s (part 1)':<{label}}{ratio}"
        "   <- the figure to quote",
        f"   {'candidate: ' + r.candidate:<{label}}",
        f"   {'  against current':<{label}}{'':>10}     {changes}; {_n(sim['changed_events'])} events change",
        f"   {'  counts add up to the events, both policies':<{label}}{_yes(r.counts_add_up):>10}",
        f"   {'  current policy replayed = what was logged':<{label}}{_yes(r.replay_matches_log):>10}",
        f"   {'function work for all events (parse + simulate)':<{label}}{r.function_seconds:>10.1f} s    "
        f"+ {_n(r.full_queries)} Query pages to read the full log",
        f"   {f'  fits PolicyApiFunction timeout ({lambda_s} s)':<{label}}{_yes(r.fits):>10}     "
        f"leaves {r.seconds_per_query_left(lambda_s) * 1000:,.0f} ms per Query page",
        f"   {f'  fits API Gateway REST integration timeout ({gateway_s} s)':<{label}}"
        f"{_yes(r.fits_in(gateway_s)):>10}     "
        f"leaves {r.seconds_per_query_left(gateway_s) * 1000:,.0f} ms per Query page",
        f"   section time {seconds:.0f} s (log generated in {r.generate_seconds:.0f} s)",
        "   notes:",
    ]
    reported = r.as_json().get("simulation_100k_ratio_vs_baseline")
    if isinstance(reported, dict) and reported.get("value") is not None:
        lines[-2:-2] = [
            f"   {'ratio function work ÷ baseline (' + str(reported['baseline']) + ')':<{label}}"
            f"{reported['value']:>10.3f}   <- the goal's figure",
        ]
    if r.scale is not None:
        lines[-2:-2] = scale_lines(r, label)
    return lines + [f"     {line}" for line in r.notes]


def scale_lines(r: simulation.SimulationResult, label: int) -> list[str]:
    """The job's partitions (bench/simulation_scale.py) and the arithmetic for 30 days of 1 M events a day."""
    assert r.scale is not None
    s, big = r.scale, r.scale.at_scale(r.item_bytes_mean, r.replayables_mb / r.events, cost.PRICES)
    usd = big["cost_usd"]
    return [
        f"   {f'job: {s.partitions} partitions alone, per partition (median)':<{label}}"
        f"{s.per_partition_events_per_second:>10,.0f}   events/s of function work",
        f"   {f'job: the same in a pool of {s.workers} processes':<{label}}{s.speed_up:>10.2f}x  "
        f"scale-out ({s.serial_seconds:.1f} s alone -> {s.pool_seconds:.1f} s; ideal {s.workers:.1f}x)",
        f"   {'30 days x 1 M events/day on Lambda (' + str(big['partitions']) + ' partitions at once)':<{label}}"
        f"{big['wall_seconds']:>10,.0f} s  wall: {big['partition_function_seconds']:,.0f} s work + "
        f"{big['partition_read_seconds_assumed']:,.0f} s reads (assumed) per partition; "
        f"${usd['total']:.2f} (Lambda ${usd['lambda_duration_usd']:.2f}, reads ${usd['dynamodb_reads_usd']:.2f})"
        + ("" if big["fits_lambda_timeout"] else "; over Lambda's 900 s: more partitions needed"),
        f"   {'  memory each partition holds (decoded decisions)':<{label}}{big['partition_memory_mb']:>10,.0f} MB"
        + ("" if big["fits_lambda_memory"] else f"  over 80% of the function's {simulation_scale.LAMBDA_MEMORY_MB} MB"),
    ]


def cost_table(r: naive.CostResult, levels: Sequence[naive.HistoryLevel], seconds: float) -> list[str]:
    label, column = 48, 14
    p = cost.PRICES
    ours, base = r.ours, r.naive
    lifecycle = " and the lifecycle (held follow-ups' schedules fired)" if r.lifecycle else ""
    lines = [
        f"5. Requests and list-price cost per event: this design against a naive baseline (Powertools idempotency,"
        f" Query history, put, put, publish), the same {_n(r.events)} events: one day of a contact centre,"
        f" {_n(r.customers)} customers with one interaction each that day after their history"
        f" ({_n(r.past_events)} earlier interactions, decided first, not measured), batches of 10{lifecycle}",
        f"   prices ASSUMED by bench/cost.py ({cost.PRICE_REGION} list, as of {cost.PRICE_DATE}): DynamoDB on-demand "
        f"${p.dynamodb_wru_per_million}/M WRU, ${p.dynamodb_rru_per_million}/M RRU; Lambda",
        f"   ${p.lambda_requests_per_million}/M requests + ${p.lambda_gb_second}/GB-s at {p.lambda_memory_mb} MB; "
        f"SQS ${p.sqs_requests_per_million}/M requests; EventBridge ${p.eventbridge_events_per_million}/M events "
        f"(64 KB chunks); Scheduler ${p.scheduler_invocations_per_million}/M invocations",
        f"   {'decide path (the issue baseline scope)':<{label}}{'ours':>{column}}{'naive':>{column}}"
        f"{'naive ÷ ours':>{column}}",
    ]

    def row(title: str, a: float, b: float, digits: int = 3, ratio: bool = True) -> None:
        shown = f"{_ratio(b, a):>{column}}" if ratio else ""
        lines.append(f"   {title:<{label}}{_n(a, digits):>{column}}{_n(b, digits):>{column}}{shown}")

    ope, npe = ours.per_event(), base.per_event()
    row("DynamoDB requests / event", ope["dynamodb"], npe["dynamodb"])
    for op in sorted({k for k in (*ours.meter.calls, *base.meter.calls) if k.startswith("dynamodb.")}):
        row(f"  {op.partition('.')[2]}", ours.meter.calls[op] / r.events, base.meter.calls[op] / r.events, 3, False)
    row("EventBridge PutEvents requests / event", ope["events"], npe["events"])
    row(
        "  entries published / event",
        ours.meter.eventbridge_entries / r.events,
        base.meter.eventbridge_entries / r.events,
    )
    row("Scheduler requests / event (Create/DeleteSchedule)", ope["scheduler"], npe["scheduler"])
    row("SQS requests / event (send + receive + delete)", ope["sqs"], npe["sqs"])
    row("Lambda invocations / event", ope["lambda"], npe["lambda"])
    if ours.stream.count:
        row("  of them LogStreamFunction", ours.stream.count / r.events, 0.0, 3, False)
    row("DynamoDB WRU / event, table writes", ours.meter.wru / r.events, base.meter.wru / r.events, 2)
    row("DynamoDB WRU / event, index writes", ours.meter.index_wru / r.events, base.meter.index_wru / r.events, 2)
    for index in sorted({*ours.meter.index_wru_by, *base.meter.index_wru_by}):
        row(
            f"  index {index}",
            ours.meter.index_wru_by.get(index, 0.0) / r.events,
            base.meter.index_wru_by.get(index, 0.0) / r.events,
            2,
            False,
        )
    row("DynamoDB RRU / event", ours.meter.rru / r.events, base.meter.rru / r.events, 2)
    row("item bytes written / event", ours.meter.bytes_written / r.events, base.meter.bytes_written / r.events, 0)
    row("item bytes read / event", ours.meter.bytes_read / r.events, base.meter.bytes_read / r.events, 0)
    usage_ours, usage_naive = ours.usage(), base.usage()
    row(
        "Lambda ms / event, priced (model, see notes)",
        1000 * (usage_ours.lambda_model_seconds or 0.0) / r.events,
        1000 * (usage_naive.lambda_model_seconds or 0.0) / r.events,
        2,
    )
    row(
        "  handler wall on moto (not priced)",
        1000 * usage_ours.lambda_seconds / r.events,
        1000 * usage_naive.lambda_seconds / r.events,
        2,
    )
    usd_ours, usd_naive = usage_ours.per_million(), usage_naive.per_million()
    lines.append("   USD per million events, decide path:")
    items = ("dynamodb_writes", "dynamodb_index_writes", "dynamodb_reads", "lambda_requests", "lambda_duration")
    for item in (*items, "sqs", "eventbridge"):
        row(f"  {item.replace('_', ' ')}", usd_ours[item], usd_naive[item], 3)
    row("  DynamoDB (writes + index writes + reads)", usd_ours["dynamodb"], usd_naive["dynamodb"], 3)
    row("  total", usd_ours["total"], usd_naive["total"], 2)
    if r.lifecycle:
        all_ours, all_naive = ours.usage(lifecycle=True).per_million(), base.usage(lifecycle=True).per_million()
        lines.append(
            f"   with the lifecycle: {_n(r.held)} held follow-ups' schedules fired as they fell due (those still held"
            " after the last event, as of their send times), each released or cancelled by the release function:"
        )
        for title, key in (("DynamoDB requests", "dynamodb"), ("EventBridge requests", "events")):
            row(
                f"  {title} / event, with the lifecycle",
                ours.per_event(lifecycle=True)[key],
                base.per_event(lifecycle=True)[key],
            )
        row(
            "  Lambda invocations / event, with the lifecycle",
            ours.per_event(True)["lambda"],
            base.per_event(True)["lambda"],
        )
        row(
            "  release requests (all services) / release",
            _per(ours.lifecycle.calls, ours.releases.count),
            _per(base.lifecycle.calls, base.releases.count),
            2,
        )
        row(
            "  WRU (table + index) / release",
            ours.lifecycle.total_wru / max(1, ours.releases.count),
            base.lifecycle.total_wru / max(1, base.releases.count),
            2,
        )
        lines.append("   USD per million events, decide path + lifecycle:")
        for item in (*items, "sqs", "eventbridge", "scheduler"):
            row(f"  {item.replace('_', ' ')}", all_ours[item], all_naive[item], 3)
        row("  DynamoDB (writes + index writes + reads)", all_ours["dynamodb"], all_naive["dynamodb"], 3)
        row("  total", all_ours["total"], all_naive["total"], 2)
    lines.append(
        f"   follow-ups approved: {r.approval_share:.0%} of the decisions; stream batches (ours):"
        f" {r.events / max(1, ours.stream.count):.1f} events each on the decide path"
    )
    lines.append(
        f"   same decisions on all {_n(r.events)} events (published detail, byte for byte): {_yes(r.same_decisions)}"
        + (f"; same releases and cancellations: {_yes(r.same_settlements)}" if r.lifecycle else "")
        + f"; failed records: ours {ours.failed}, naive {base.failed}"
    )
    if levels:
        first = levels[0]
        head = f"   {'by customer history (past interactions)':<{label}}"
        head += "".join(f"{_n(lv.history):>{column}}" for lv in levels) + f"{'÷ ' + _n(first.history):>{column}}"
        lines += [
            f"   {first.customers} customers x {first.events_per_customer} measured events per level, history decided"
            " first through each design (event clock)",
            head,
        ]
        for design in naive.DESIGNS:
            metrics: list[tuple[str, Callable[[naive.Run], float], int]] = [
                ("requests / decision", lambda x: x.requests_per_decision, 3),
                ("RRU / decision", lambda x: x.meter.rru / x.events, 2),
                ("item bytes read / decision", lambda x: x.meter.bytes_read / x.events, 0),
                ("time / decision (ms)", lambda x: x.ms_per_decision, 2),
            ]
            for title, value, digits in metrics:
                values = [value(lv.runs[design]) for lv in levels]
                ratios = " / ".join(_ratio(v, values[0]) for v in values)
                line = f"   {design + ': ' + title:<{label}}" + "".join(f"{_n(v, digits):>{column}}" for v in values)
                lines.append(line + f"   {ratios}")
        same = all(lv.same_decisions for lv in levels)
        lines.append(f"   same decisions at every history level: {_yes(same)}")
    lines += [
        f"   section time {seconds:.0f} s",
        "   notes:",
        "     - naive: NOT concurrency-safe (two deciders read the same history and both take a cap's last slot);",
        "       Powertools idempotency = conditional PutItem INPROGRESS + UpdateItem COMPLETED with the result;",
        "       its release: GetItem the log entry, Query the history, re-check, UpdateItem history + log, PutEvents",
        *(f"     - {line}" for line in naive.INDEX_NOTES),
        *(f"     - {line}" for line in naive.STREAM_NOTES),
        "     - SQS requests are counted from the batches (EventBridge rule SendMessage per event, ReceiveMessage and",
        "       DeleteMessageBatch per batch of 10), the same for both; empty polls, storage, logs, X-Ray not priced;",
        "       Scheduler API calls (Create/DeleteSchedule) are free, each schedule fired is priced; stream reads by",
        "       Lambda are free",
        "     - WRU from the items moto stores before and after each write (the larger for a put or update, the old",
        "       one for a delete), x2 in transactions; index WRU per global secondary index of template.yaml (moto's",
        "       table.global_indexes) on the projected entry, not doubled; RRU from the items read",
        "     - Lambda duration is priced on a model: the handler's time outside AWS calls (measured) plus an ASSUMED",
        "       round trip per request, because on moto every call runs in the handler's thread (the wall on moto is",
        "       shown, not priced): " + ", ".join(f"{k} {v:g} ms" for k, v in cost.ASSUMED_LATENCY_MS.items()),
        "     - the two designs run side by side in two processes on this shared machine (history levels in turn);",
        "       request counts and units are exact",
    ]
    return lines


def _per(calls: Any, n: int) -> float:
    return sum(calls.values()) / n if n else 0.0


def cost_json(r: naive.CostResult, levels: Sequence[naive.HistoryLevel], seconds: float) -> dict[str, Any]:
    ours, base = r.ours.usage().per_million(), r.naive.usage().per_million()
    found: dict[str, Any] = {
        "prices_assumed": cost.price_table(),
        "assumed_latency_ms": dict(cost.ASSUMED_LATENCY_MS),
        "events": r.events,
        "customers": r.customers,
        "past_events": r.past_events,
        "approval_share": r.approval_share,
        "seconds": round(seconds, 1),
        "same_decisions": r.same_decisions,
        "lifecycle_fired": r.lifecycle,
        "held_follow_ups_fired": r.held if r.lifecycle else None,
        "same_settlements": r.same_settlements if r.lifecycle else None,
        "naive_indexes": " ".join(naive.INDEX_NOTES),
        "stream_batches": " ".join(naive.STREAM_NOTES),
        "ours": r.ours.as_json(),
        "naive": r.naive.as_json(),
        "ratio_naive_to_ours": {
            "dynamodb_requests_per_event": r.naive.per_event()["dynamodb"] / r.ours.per_event()["dynamodb"],
            "wru_per_event": r.naive.meter.wru / r.ours.meter.wru,
            "total_wru_per_event": r.naive.meter.total_wru / r.ours.meter.total_wru,
            "rru_per_event": r.naive.meter.rru / r.ours.meter.rru,
            "usd_per_million_events": base["total"] / ours["total"],
        },
        "usd_per_million_events": {"ours": ours, "naive": base},
        "histories": [],
    }
    if r.lifecycle:
        found["usd_per_million_events_with_lifecycle"] = {
            "ours": r.ours.usage(lifecycle=True).per_million(),
            "naive": r.naive.usage(lifecycle=True).per_million(),
        }
    for lv in levels:
        level: dict[str, Any] = {
            "history": lv.history,
            "customers": lv.customers,
            "events_per_customer": lv.events_per_customer,
            "same_decisions": lv.same_decisions,
        }
        for design, run in lv.runs.items():
            first = levels[0].runs[design]
            level[design] = {
                **run.as_json(),
                "history_seconds": lv.history_seconds[design],
                "requests_per_decision": run.requests_per_decision,
                "requests_ratio_to_first": run.requests_per_decision / first.requests_per_decision,
                "ms_ratio_to_first": run.ms_per_decision / first.ms_per_decision,
                "rru_ratio_to_first": (run.meter.rru / run.events) / (first.meter.rru / first.events),
            }
        found["histories"].append(level)
    return found


def collect_goals(
    *,
    engine: engine_speed.EngineResult,
    cold: dict[str, Any] | None,
    populations: Sequence[aws_path.PopulationResult],
    simulated: simulation.SimulationResult | None,
    costed: naive.CostResult | None,
    replay: dict[str, Any] | None,
    failed: dict[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Issue 12's goals from this run's sections (bench/goals.py), each with its same-run baseline."""
    failed = failed or {}

    def why(part: str, skipped: str) -> str:
        return f"part failed ({failed[part][:200]})" if part in failed else skipped

    found: dict[str, dict[str, Any]] = {}
    if costed is not None:
        ours, base = costed.ours.usage().per_million(), costed.naive.usage().per_million()
        size = f"{costed.events:,} events"
        found["cost_ratio_vs_naive"] = goals.goal(
            "cost_ratio_vs_naive",
            ours["total"] / base["total"],
            f"naive design, same {size}: ${base['total']:.2f}/M (ours ${ours['total']:.2f}/M), decide path",
            scope="decide path",
        )
        found["dynamodb_usd_per_million"] = goals.goal(
            "dynamodb_usd_per_million",
            ours["dynamodb"],
            f"naive design, same {size}: ${base['dynamodb']:.2f}/M DynamoDB, decide path",
            scope="decide path",
        )
        if costed.lifecycle:
            all_ours = costed.ours.usage(lifecycle=True).per_million()
            all_base = costed.naive.usage(lifecycle=True).per_million()
            found["cost_ratio_vs_naive"]["with_lifecycle"] = goals.scope(
                "cost_ratio_vs_naive",
                all_ours["total"] / all_base["total"],
                f"naive + its releases: ${all_base['total']:.2f}/M (ours ${all_ours['total']:.2f}/M)",
            )
            found["dynamodb_usd_per_million"]["with_lifecycle"] = goals.scope(
                "dynamodb_usd_per_million",
                all_ours["dynamodb"],
                f"naive + its releases: ${all_base['dynamodb']:.2f}/M DynamoDB",
            )
    else:
        for key in ("cost_ratio_vs_naive", "dynamodb_usd_per_million"):
            found[key] = goals.not_measured(key, why("cost", "part 5 skipped"))
    found["engine_ratio_vs_validation"] = goals.goal(
        "engine_ratio_vs_validation",
        engine.ratio,
        f"pydantic InteractionClosed.model_validate of the same {engine.events:,} events: "
        f"{engine.validation_per_second:,.0f}/s (engine {engine.engine_per_second:,.0f}/s)",
    )
    if cold is not None:
        found["cold_import_ratio_max"] = goals.goal(
            "cold_import_ratio_max",
            cold["cold_import_ratio_max"],
            f"{cold['baseline']}: {cold['baseline_cpu_seconds'] * 1000:.0f} ms CPU, fresh interpreters, "
            f"least of {cold['repeats']}",
        )
    else:
        found["cold_import_ratio_max"] = goals.not_measured(
            "cold_import_ratio_max", why("cold imports", "--skip-imports")
        )
    reported = simulated.as_json().get("simulation_100k_ratio_vs_baseline") if simulated is not None else None
    if isinstance(reported, dict) and reported.get("value") is not None:
        size = "" if simulated is None or simulated.events == 100_000 else f" (at {simulated.events:,} events)"
        found["simulation_100k_ratio_vs_baseline"] = goals.goal(
            "simulation_100k_ratio_vs_baseline", float(reported["value"]), str(reported["baseline"]) + size
        )
    else:
        reason = why("simulation", "part 4 skipped") if simulated is None else "bench/simulation.py reports no baseline"
        found["simulation_100k_ratio_vs_baseline"] = goals.not_measured("simulation_100k_ratio_vs_baseline", reason)
    worst = max(populations, key=lambda r: r.dynamodb_per_event)
    naive_requests = (
        f"naive design {costed.naive.per_event()['dynamodb']:.2f} DynamoDB requests/event (part 5)"
        if costed is not None
        else "naive design not measured (part 5 skipped)"
    )
    found["requests_per_event"] = goals.goal(
        "requests_per_event",
        worst.dynamodb_per_event,
        f"{naive_requests}; ours, all AWS requests {worst.requests_per_event:.3f}/event",
        population=worst.population.label,
        all_aws_requests_per_event=max(r.requests_per_event for r in populations),
    )
    first, last = populations[0], populations[-1]
    if len(populations) > 1:
        found["history_flatness"] = goals.goal(
            "history_flatness",
            last.dynamodb_per_event / first.dynamodb_per_event,
            f"{first.population.label}: {first.dynamodb_per_event:.3f} DynamoDB requests/event "
            f"({last.population.label}: {last.dynamodb_per_event:.3f})",
            # every request, the lifecycle's schedules included (they follow the traffic, not the history)
            all_requests_ratio=last.requests_per_event / first.requests_per_event,
        )
    else:
        found["history_flatness"] = goals.not_measured("history_flatness", "one history size only")
    if replay is not None:
        early, late = replay["early"], replay["late"]
        found["local_replay_flatness"] = goals.goal(
            "local_replay_flatness",
            float(replay["local_replay_flatness"]),
            f"around the {early['around']:,}th event: {early['events_per_second']:.1f} events/s "
            f"(around the {late['around']:,}th: {late['events_per_second']:.1f})",
        )
    else:
        found["local_replay_flatness"] = goals.not_measured(
            "local_replay_flatness", why("replay flatness", "part 6 skipped")
        )
    return {key: found[key] for key in goals.KEYS}


def replay_table(r: dict[str, Any]) -> list[str]:
    lines = [
        f"6. Local replay flatness (`governor replay` against `governor local`, two processes): {_n(r['events'])} "
        f"events, rate over {r['window']:,} decisions around the n-th",
    ]
    for point in r.get("profile", []):
        lines.append(f"   {'around event ' + _n(point['around']):<40}{point['events_per_second']:>10.1f} events/s")
    lines += [
        f"   {'ratio last ÷ ' + _n(r['early']['around']) + 'th':<40}{r['local_replay_flatness']:>10.2f}"
        "   <- the figure to quote",
        f"   section time {r.get('seconds_total', 0):.0f} s",
        *(f"   {line}" for line in r.get("notes", [])),
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500, help="measured events per population (part 2)")
    parser.add_argument("--histories", type=int, nargs="+", default=[1, 1000], help="past interactions per customer")
    parser.add_argument(
        "--long-history-customers", type=int, default=5, help="customers sharing the events of a long history (part 2)"
    )
    parser.add_argument("--engine-events", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--import-repeats",
        type=int,
        default=9,
        help="fresh interpreters per import (least of; more rounds, a steadier least on a shared machine)",
    )
    parser.add_argument("--skip-local-stack", action="store_true", help="skip part 3 (the local stack under load)")
    parser.add_argument("--local-stack-events", type=int, default=3_000, help="events through the queue path")
    parser.add_argument("--decide-calls", type=int, default=200, help="sequential POST /decide requests")
    parser.add_argument("--moto-baseline-seconds", type=float, default=3.0, help="moto PutItem loop duration")
    parser.add_argument("--skip-simulation", action="store_true", help="skip part 4 (policy simulation)")
    parser.add_argument("--simulation-events", type=int, default=100_000, help="logged events simulated")
    parser.add_argument(
        "--simulation-read-events",
        type=int,
        default=simulation.READ_EVENTS,
        help="logged events written to moto and read back (moto walks the table on each Query)",
    )
    parser.add_argument("--skip-imports", action="store_true", help="skip the handlers' cold import times")
    parser.add_argument("--skip-cost", action="store_true", help="skip part 5 (cost per event, naive baseline)")
    parser.add_argument("--cost-events", type=int, default=2_000, help="events through both designs for cost")
    parser.add_argument("--no-lifecycle", action="store_true", help="part 5: do not fire the held follow-ups")
    parser.add_argument(
        "--history-levels",
        type=lambda text: [int(x) for x in text.split(",") if x],
        default=[1, 100, 1000],
        help="past interactions per customer, comma-separated (part 5; empty: none)",
    )
    parser.add_argument("--history-customers", type=int, default=1, help="customers per history level (part 5)")
    parser.add_argument("--history-events", type=int, default=50, help="measured events per customer (part 5)")
    parser.add_argument("--skip-replay", action="store_true", help="skip part 6 (local replay flatness)")
    parser.add_argument("--replay-events", type=int, default=10_000, help="events through governor replay (part 6)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    started, clock = datetime.now(UTC), time.perf_counter()
    host = machine()
    sizes = sizes_used(args)
    print(f"follow-up governor benchmarks, {started:%Y-%m-%d %H:%M} UTC", flush=True)
    print(
        f"machine: {host['platform']} | {host['processor']} | {host['cpu_count']} CPUs ({host['usable_cpus']} usable)"
    )
    print(f"python: {host['python']} | load average at start: {host['load_average']}")
    print("sizes: " + "; ".join(f"{k} {v}" for k, v in sizes.items()))
    print("=" * WIDTH, flush=True)

    engine = engine_speed.measure(events=args.engine_events, repeats=args.repeats)
    for line in engine_table(engine):
        print(line)
    print("-" * WIDTH, flush=True)

    failed: dict[str, str] = {}  # part -> its error: the other parts still run and are reported
    cold: dict[str, Any] | None = None
    if not args.skip_imports:
        cold = _attempt("cold imports", failed, lambda: cold_imports.measure(repeats=args.import_repeats))
        if cold is not None:
            print(cold_imports.table(cold))
            print("-" * WIDTH, flush=True)

    populations = aws_path.measure(
        events=args.events, histories=tuple(args.histories), max_customers=args.long_history_customers
    )
    for line in aws_table(populations):
        print(line)
    print("-" * WIDTH)
    for line in notes(populations):
        print(line)
    print("-" * WIDTH, flush=True)

    stack: local_stack.LocalStackResult | None = None
    if not args.skip_local_stack:
        stack = _attempt(
            "local stack",
            failed,
            lambda: local_stack.measure(
                events=args.local_stack_events,
                decide_calls=args.decide_calls,
                baseline_seconds=args.moto_baseline_seconds,
            ),
        )
        if stack is not None:
            for line in local_stack_table(stack):
                print(line)
            print("-" * WIDTH, flush=True)

    simulated: simulation.SimulationResult | None = None
    if not args.skip_simulation:
        section = time.perf_counter()
        simulated = _attempt(
            "simulation",
            failed,
            lambda: simulation.measure(
                events=args.simulation_events,
                read_events=args.simulation_read_events,
                engine_per_second=engine.engine_per_second,
            ),
        )
        if simulated is not None:
            for line in simulation_table(simulated, time.perf_counter() - section):
                print(line)
            print("-" * WIDTH, flush=True)

    costed: naive.CostResult | None = None
    levels: list[naive.HistoryLevel] = []
    cost_seconds = 0.0
    if not args.skip_cost:
        section = time.perf_counter()
        costed = _attempt(
            "cost", failed, lambda: naive.measure_cost(events=args.cost_events, lifecycle=not args.no_lifecycle)
        )
        if costed is not None and args.history_levels:
            levels = (
                _attempt(
                    "cost by history",
                    failed,
                    lambda: naive.measure_histories(
                        tuple(args.history_levels),
                        customers=args.history_customers,
                        events_per_customer=args.history_events,
                    ),
                )
                or []
            )
        cost_seconds = time.perf_counter() - section
        if costed is not None:
            for line in cost_table(costed, levels, cost_seconds):
                print(line)
            print("-" * WIDTH, flush=True)

    replay: dict[str, Any] | None = None
    if not args.skip_replay:
        replay = _attempt("replay flatness", failed, lambda: replay_flatness.measure(args.replay_events))
        if replay is not None:
            for line in replay_table(replay):
                print(line)
            print("-" * WIDTH, flush=True)
    seconds = time.perf_counter() - clock

    first, last = populations[0], populations[-1]
    found_goals = collect_goals(
        engine=engine,
        cold=cold,
        populations=populations,
        simulated=simulated,
        costed=costed,
        replay=replay,
        failed=failed,
    )
    report: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "seconds_total": round(seconds, 1),
        "machine": host,
        "sizes": sizes,
        "goals": found_goals,
        "engine": engine.as_json(),
        "cold_imports": {"skipped": True} if cold is None else cold,
        "aws": {
            "emulator": list(EMULATOR_NOTES),
            "events_per_population": args.events,
            "histories": list(args.histories),
            "populations": [r.as_json() for r in populations],
            "ratios_last_to_first": {
                "dynamodb_requests_per_event": last.dynamodb_per_event / first.dynamodb_per_event,
                "put_events_per_event": _safe_ratio(last.put_events_per_event, first.put_events_per_event),
                "product_requests_per_event": last.requests_per_event / first.requests_per_event,
                "bytes_per_event": last.bytes_per_event / first.bytes_per_event,
                "ms_per_decision": last.ms_per_decision / first.ms_per_decision,
                "ms_outside_aws_calls_per_decision": last.ms_outside_aws_per_decision
                / first.ms_outside_aws_per_decision,
            },
            "checks": checks(populations),
        },
        "local_stack": {"skipped": True} if stack is None else stack.as_json(),
        "simulation": {"skipped": True} if simulated is None else simulated.as_json(),
        "cost": {"skipped": True} if costed is None else cost_json(costed, levels, cost_seconds),
        "local_replay": {"skipped": True} if replay is None else replay,
        "failed_parts": failed,
    }
    for part, key in (
        ("cold imports", "cold_imports"),
        ("local stack", "local_stack"),
        ("simulation", "simulation"),
        ("cost", "cost"),
        ("replay flatness", "local_replay"),
    ):
        if part in failed:
            report[key] = {"failed": failed[part]}
    extra_checks = {}
    if stack is not None:
        extra_checks["local_stack_every_event_decided"] = stack.all_decided
        extra_checks["local_stack_decide_answered_200"] = stack.decide_ok
    if simulated is not None:
        extra_checks["simulation_counts_add_up"] = simulated.counts_add_up
    if costed is not None:
        extra_checks["cost_same_decisions_as_naive"] = costed.same_decisions and all(lv.same_decisions for lv in levels)
    report["checks"] = extra_checks
    for line in goals.table(found_goals, WIDTH):
        print(line)
    print("=" * WIDTH)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"total {seconds:.0f} s; wrote {_shown(args.output)}")
    if failed:
        print("FAILED parts: " + ", ".join(failed))
    return 0 if all(report["aws"]["checks"].values()) and all(extra_checks.values()) and not failed else 1


def sizes_used(args: argparse.Namespace) -> dict[str, str]:
    """What each part measured, printed first and written to the results: ratios quoted from a run
    hold for these sizes (each chosen so the figure means what it says; see README)."""
    sizes = {
        "engine": f"{args.engine_events:,} events, best of {args.repeats}",
        "cold imports": "skipped" if args.skip_imports else f"least of {args.import_repeats} fresh interpreters",
        "requests": f"{args.events:,} events per population, histories {', '.join(map(str, args.histories))} "
        f"(long: {args.long_history_customers} customers)",
        "local stack": "skipped"
        if args.skip_local_stack
        else f"{args.local_stack_events:,} events + {args.decide_calls} POST /decide",
        "simulation": "skipped"
        if args.skip_simulation
        else f"{args.simulation_events:,} logged events ({args.simulation_read_events:,} read through moto)",
        "cost": "skipped"
        if args.skip_cost
        else f"{args.cost_events:,} events (one day, one per customer, after 1-3 past each) x 2 designs"
        + ("" if args.no_lifecycle else " + lifecycle")
        + (
            f", history levels {','.join(map(str, args.history_levels))} x {args.history_events} events"
            if args.history_levels
            else ", no history levels"
        ),
        "replay": "skipped" if args.skip_replay else f"{args.replay_events:,} events through governor replay",
    }
    return sizes


def _attempt(part: str, failed: dict[str, str], measure: Callable[[], T]) -> T | None:
    """One part of the run; a part that raises is reported (and the run exits 1) without losing the
    parts measured before or after it."""
    try:
        return measure()
    except Exception as error:
        failed[part] = f"{type(error).__name__}: {error}"
        print(f"{part}: FAILED, {failed[part][:2000]}", flush=True)
        traceback.print_exc()
        print("-" * WIDTH, flush=True)
        return None


def _safe_ratio(last: float, first: float) -> float | None:
    return last / first if first else None


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
