"""`make bench`: engine speed against pydantic validation, and AWS requests per event through the
queue path for customers with a short and a long history. Prints a table, writes bench/results/latest.json.
Then the whole local stack under load next to moto's own request rate (--skip-local-stack), and a
policy simulation over a busy decision log (--skip-simulation).

The machines this runs on are shared and noisy: quote ratios (engine ÷ validation, long ÷ short
history), not absolute times. Request counts are exact and do not depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import aws_path, cost, engine_speed, imports, local_stack, naive, simulation
from bench.emulator import EMULATOR_NOTES

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
        (
            "superseded (GetItem + DeleteSchedule each)",
            lambda r: (
                f"{r.cancellations:,}: {r.calls('dynamodb', 'GetItem'):,} + {r.calls('scheduler', 'DeleteSchedule'):,}"
            ),
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
            r.calls("events", "PutEvents") == r.put_events_needed for r in results
        ),
        "every_decision_and_cancellation_published": all(
            r.put_events_entries == r.events + r.cancellations for r in results
        ),
        "lifecycle_requests_per_held_or_superseded_follow_up": all(r.lifecycle_requests_match for r in results),
        "no_other_product_requests": all(not r.other_requests for r in results),
        "no_failed_records": all(r.failed_records == 0 and r.redelivered == 0 for r in results),
        "requests_per_event_flat": all(r.request_profile == first.request_profile for r in results),
        "product_clients_counted": all(r.clients_unchanged for r in results),
    }


def verdicts(results: Sequence[aws_path.PopulationResult]) -> list[str]:
    found = checks(results)
    failed = [name for name, ok in found.items() if not ok]
    goal = (
        "1 DynamoDB write per event + 1 BatchGetItem and ceil(entries/10) PutEvents per batch of 10;"
        " 1 CreateSchedule per held, 1 GetItem + 1 DeleteSchedule per superseded follow-up"
    )
    return [f"design goal ({goal}): " + ("met" if not failed else "NOT met: " + ", ".join(failed))]


def notes(results: Sequence[aws_path.PopulationResult]) -> list[str]:
    return [
        "notes:",
        *(f"  - {note}" for note in EMULATOR_NOTES),
        "  - history: past interactions closed over the previous ~2.5 years, decided first through the production",
        "    Governor (fresh per batch of 10: one prefetch, one decide per event) with the event clock; counters reset",
        "    after it. Measured events close over the next 100 days, also decided with the event clock.",
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
    return lines + [f"     {line}" for line in r.notes]


def cost_table(r: naive.CostResult, levels: Sequence[naive.HistoryLevel], seconds: float) -> list[str]:
    label, column = 48, 14
    p = cost.PRICES
    ours, base = r.ours, r.naive
    lines = [
        f"5. Requests and list-price cost per event: this design against a naive baseline (Powertools idempotency,"
        f" Query history, put, put, publish), the same {_n(r.events)} events of {_n(r.customers)} customers, "
        "batches of 10",
        f"   prices ASSUMED by bench/cost.py ({cost.PRICE_REGION} list, as of {cost.PRICE_DATE}): DynamoDB on-demand "
        f"${p.dynamodb_wru_per_million}/M WRU, ${p.dynamodb_rru_per_million}/M RRU; Lambda",
        f"   ${p.lambda_requests_per_million}/M requests + ${p.lambda_gb_second}/GB-s at {p.lambda_memory_mb} MB; "
        f"SQS ${p.sqs_requests_per_million}/M requests; EventBridge ${p.eventbridge_events_per_million}/M events "
        "(64 KB chunks)",
        f"   {'':<{label}}{'ours':>{column}}{'naive':>{column}}{'naive ÷ ours':>{column}}",
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
    row("SQS requests / event (send + receive + delete)", ope["sqs"], npe["sqs"])
    row("Lambda invocations / event", ope["lambda"], npe["lambda"])
    row("DynamoDB WRU / event", ours.meter.wru / r.events, base.meter.wru / r.events, 2)
    row("DynamoDB RRU / event", ours.meter.rru / r.events, base.meter.rru / r.events, 2)
    row("item bytes written / event", ours.meter.bytes_written / r.events, base.meter.bytes_written / r.events, 0)
    row("item bytes read / event", ours.meter.bytes_read / r.events, base.meter.bytes_read / r.events, 0)
    row("time / decision (handler wall, ms)", ours.ms_per_decision, base.ms_per_decision, 2)
    usd_ours, usd_naive = ours.usage().per_million(), base.usage().per_million()
    lines.append("   USD per million events:")
    for item in ("dynamodb_writes", "dynamodb_reads", "lambda_requests", "lambda_duration", "sqs", "eventbridge"):
        row(f"  {item.replace('_', ' ')}", usd_ours[item], usd_naive[item], 3)
    row("  total", usd_ours["total"], usd_naive["total"], 2)
    lines.append(
        f"   same decisions on all {_n(r.events)} events (published detail, byte for byte): {_yes(r.same_decisions)}"
        f"; failed records: ours {ours.failed}, naive {base.failed}"
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
        "       Powertools idempotency = conditional PutItem INPROGRESS + UpdateItem COMPLETED with the result",
        "     - SQS requests are counted from the batches (EventBridge rule SendMessage per event, ReceiveMessage and",
        "       DeleteMessageBatch per batch of 10), the same for both; empty polls, storage, logs, X-Ray not priced",
        "     - WRU/RRU from item sizes measured on the clients (updates: the item stored after), x2 in transactions;",
        "       ours' per-batch stats transaction rewrites each decision's log entry (counted_at), billed on its size",
        "     - the two cost runs run side by side in two processes on this shared machine: Lambda duration is",
        "       inflated by moto and by contention; request counts and units are exact; history levels run in turn",
    ]
    return lines


def cost_json(r: naive.CostResult, levels: Sequence[naive.HistoryLevel], seconds: float) -> dict[str, Any]:
    ours, base = r.ours.usage().per_million(), r.naive.usage().per_million()
    found: dict[str, Any] = {
        "prices_assumed": cost.price_table(),
        "events": r.events,
        "customers": r.customers,
        "seconds": round(seconds, 1),
        "same_decisions": r.same_decisions,
        "ours": r.ours.as_json(),
        "naive": r.naive.as_json(),
        "ratio_naive_to_ours": {
            "dynamodb_requests_per_event": r.naive.per_event()["dynamodb"] / r.ours.per_event()["dynamodb"],
            "wru_per_event": r.naive.meter.wru / r.ours.meter.wru,
            "rru_per_event": r.naive.meter.rru / r.ours.meter.rru,
            "usd_per_million_events": base["total"] / ours["total"],
        },
        "histories": [],
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000, help="measured events per population")
    parser.add_argument("--histories", type=int, nargs="+", default=[1, 1000], help="past interactions per customer")
    parser.add_argument("--engine-events", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-local-stack", action="store_true", help="skip part 3 (the local stack under load)")
    parser.add_argument("--local-stack-events", type=int, default=10_000, help="events through the queue path")
    parser.add_argument("--decide-calls", type=int, default=300, help="sequential POST /decide requests")
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
    parser.add_argument("--cost-events", type=int, default=10_000, help="events through both designs for cost")
    parser.add_argument(
        "--history-levels",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[1, 100, 1000],
        help="past interactions per customer, comma-separated (part 5)",
    )
    parser.add_argument("--history-customers", type=int, default=1, help="customers per history level (part 5)")
    parser.add_argument("--history-events", type=int, default=50, help="measured events per customer (part 5)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    started, clock = datetime.now(UTC), time.perf_counter()
    host = machine()
    print(f"follow-up governor benchmarks, {started:%Y-%m-%d %H:%M} UTC", flush=True)
    print(
        f"machine: {host['platform']} | {host['processor']} | {host['cpu_count']} CPUs ({host['usable_cpus']} usable)"
    )
    print(f"python: {host['python']} | load average at start: {host['load_average']}")
    print("=" * WIDTH, flush=True)

    engine = engine_speed.measure(events=args.engine_events, repeats=args.repeats)
    for line in engine_table(engine):
        print(line)
    print("-" * WIDTH, flush=True)

    cold: dict[str, Any] | None = None
    if not args.skip_imports:
        cold = imports.measure()
        print(imports.table(cold))
        print("-" * WIDTH, flush=True)

    populations = aws_path.measure(events=args.events, histories=tuple(args.histories))
    for line in aws_table(populations):
        print(line)
    print("-" * WIDTH)
    for line in notes(populations):
        print(line)
    print("-" * WIDTH, flush=True)

    stack: local_stack.LocalStackResult | None = None
    if not args.skip_local_stack:
        stack = local_stack.measure(
            events=args.local_stack_events,
            decide_calls=args.decide_calls,
            baseline_seconds=args.moto_baseline_seconds,
        )
        for line in local_stack_table(stack):
            print(line)
        print("-" * WIDTH, flush=True)

    simulated: simulation.SimulationResult | None = None
    if not args.skip_simulation:
        section = time.perf_counter()
        simulated = simulation.measure(
            events=args.simulation_events,
            read_events=args.simulation_read_events,
            engine_per_second=engine.engine_per_second,
        )
        for line in simulation_table(simulated, time.perf_counter() - section):
            print(line)
        print("-" * WIDTH, flush=True)

    costed: naive.CostResult | None = None
    levels: list[naive.HistoryLevel] = []
    cost_seconds = 0.0
    if not args.skip_cost:
        section = time.perf_counter()
        costed = naive.measure_cost(events=args.cost_events)
        levels = naive.measure_histories(
            tuple(args.history_levels), customers=args.history_customers, events_per_customer=args.history_events
        )
        cost_seconds = time.perf_counter() - section
        for line in cost_table(costed, levels, cost_seconds):
            print(line)
        print("-" * WIDTH, flush=True)
    seconds = time.perf_counter() - clock

    first, last = populations[0], populations[-1]
    report: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "seconds_total": round(seconds, 1),
        "machine": host,
        "engine": engine.as_json(),
        "cold_imports": {"skipped": True} if cold is None else cold,
        "aws": {
            "emulator": list(EMULATOR_NOTES),
            "events_per_population": args.events,
            "histories": list(args.histories),
            "populations": [r.as_json() for r in populations],
            "ratios_last_to_first": {
                "dynamodb_requests_per_event": last.dynamodb_per_event / first.dynamodb_per_event,
                "put_events_per_event": last.put_events_per_event / first.put_events_per_event,
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
    }
    extra_checks = {}
    if stack is not None:
        extra_checks["local_stack_every_event_decided"] = stack.all_decided
        extra_checks["local_stack_decide_answered_200"] = stack.decide_ok
    if simulated is not None:
        extra_checks["simulation_counts_add_up"] = simulated.counts_add_up
    if costed is not None:
        extra_checks["cost_same_decisions_as_naive"] = costed.same_decisions and all(lv.same_decisions for lv in levels)
    report["checks"] = extra_checks
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"total {seconds:.0f} s; wrote {_shown(args.output)}")
    return 0 if all(report["aws"]["checks"].values()) and all(extra_checks.values()) else 1


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
