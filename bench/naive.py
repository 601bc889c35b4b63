"""Part 5: requests and list-price cost per event, this design against a naive baseline.

The naive decider is what a team would write with Powertools' idempotency utility, per record of
the SQS batch: `idempotent_function` (DynamoDBPersistenceLayer: a conditional PutItem INPROGRESS,
then an UpdateItem COMPLETED with the result), Query the customer's whole follow-up history
(pk customer_id, sk sent_at, never pruned), the same pure engine on a ledger built from it, then
plain writes: for each pending follow-up the decision supersedes, UpdateItem its history row and
its log entry to cancelled and DeleteSchedule; PutItem a history row for an approval (pending or
released, as the decision says), PutItem the log row, CreateSchedule for a held (pending) one,
PutEvents per event (the decision, then FollowUpCancelled for each follow-up it superseded).
It is NOT concurrency-safe: two deciders can both read the same history and both take the last
slot of a cap, and a cancellation is a read-then-write with no condition (a release or another
decider in between goes unnoticed). On sequential traffic it decides, schedules and announces
exactly as the governor does, checked below byte for byte on what both publish.

Both designs run in-process on moto (bench.emulator, resources from infra.local.provision), fed the same
events as Lambda-shaped SQS batches of ten. SQS requests (EventBridge's SendMessage, the event
source mapping's ReceiveMessage and DeleteMessageBatch) are the same for both and counted from
the batches, not from moto. Scheduler requests are counted for both (one CreateSchedule per held
follow-up, one DeleteSchedule per superseded one: the same for both designs) but not priced.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import random
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import workload
from bench.aws_path import HISTORY_DAYS, MEASURED_DAYS, PRESENT, _quiet_product
from bench.cost import SQS_CHUNK, UnitMeter, Usage
from bench.emulator import REGION, emulator

BATCH = 10
IDEMPOTENCY_TABLE = "naive-idempotency"
HISTORY_TABLE = "naive-history"
DESIGNS = ("ours", "naive")
# Requests that follow a decision's lifecycle (issue 11), not the customer's history: a held
# follow-up's CreateSchedule; a superseded one's DeleteSchedule, its FollowUpCancelled entry (more
# PutEvents) and, for ours, the GetItem of its cancelled log entry (to announce it). Both designs
# make the same schedule requests (checked); a longer history changes how many follow-ups are held
# and superseded (fuller caps, other approvals), so these are left out of the flat-cost check.
LIFECYCLE = ("dynamodb.GetItem", "events.PutEvents", "scheduler.CreateSchedule", "scheduler.DeleteSchedule")


def create_tables(dynamodb: Any) -> None:
    """The naive design's two extra tables: Powertools' idempotency table (pk `id`), the history table."""
    dynamodb.create_table(
        TableName=IDEMPOTENCY_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName=HISTORY_TABLE,
        KeySchema=[
            {"AttributeName": "customer_id", "KeyType": "HASH"},
            {"AttributeName": "sent_at", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "customer_id", "AttributeType": "S"},
            {"AttributeName": "sent_at", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


class NaiveDecider:
    """Per record: idempotent(query history -> engine -> cancel superseded -> put history -> put log
    -> schedule -> publish)."""

    def __init__(
        self, dynamodb: Any, events: Any, scheduler: Any, *, bus: str, log_table: str, retention: timedelta
    ) -> None:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        from shared import wiring
        from shared.adapters.scheduler import Scheduler

        self.dynamodb, self.events, self.bus = dynamodb, events, bus
        self.log_table, self.retention = log_table, retention
        # The product's schedule group and release target, on this design's own (counted) client.
        product = wiring.scheduler()
        self.scheduler = Scheduler(product.group, product.target, client=scheduler)
        self.policy = wiring.current_policy()
        self.clock = wiring.current_clock()
        self.config = IdempotencyConfig(event_key_jmespath="event_id")
        persistence = DynamoDBPersistenceLayer(table_name=IDEMPOTENCY_TABLE, boto3_client=dynamodb)
        self.process: Callable[..., dict[str, Any]] = idempotent_function(
            data_keyword_argument="detail", persistence_store=persistence, config=self.config
        )(self._process)

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        from functions.decide.batch import InvalidEvent, parse_body

        self.config.register_lambda_context(context)
        failures = []
        for record in event["Records"]:
            parsed = parse_body(record["body"], self.clock)
            if isinstance(parsed, InvalidEvent):
                continue
            try:
                self.process(detail=parsed.detail.model_dump(mode="json", exclude_none=True))
            except Exception:
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def _history(self, customer_id: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        query: dict[str, Any] = {
            "TableName": HISTORY_TABLE,
            "KeyConditionExpression": "customer_id = :c",
            "ExpressionAttributeValues": {":c": {"S": customer_id}},
        }
        while True:
            page = self.dynamodb.query(**query)
            rows += page["Items"]
            if "LastEvaluatedKey" not in page:
                return rows
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _process(self, detail: dict[str, Any]) -> dict[str, Any]:
        from shared.adapters import decision_log, publisher
        from shared.domain import engine
        from shared.domain.contacts import ContactLedger, FollowUp
        from shared.domain.decision import Action, CancelReason, Decision, State, format_utc
        from shared.domain.events import InteractionClosed

        event = InteractionClosed.model_validate(detail)
        rows = {item["decision_id"]["S"]: item for item in self._history(event.customer_id)}
        followups = tuple(
            FollowUp(
                Action(item["kind"]["S"]),
                datetime.fromisoformat(item["send_at"]["S"]),
                item["interaction_id"]["S"],
                item["decision_id"]["S"],
                state=item["state"]["S"],
                closed_at=datetime.fromisoformat(item["closed_at"]["S"]),
            )
            for item in rows.values()
            if item["state"]["S"] != str(State.CANCELLED)  # a cancelled follow-up frees its slot
        )
        ledger = ContactLedger(event.customer_id, version=len(followups), followups=followups)
        now = self.clock.now(event)
        decision = engine.decide(event, ledger, self.policy(), now)
        cancelled: list[Decision] = []
        for decision_id in decision.supersedes:
            # Read-then-write: the history was read above, nothing checks it is still pending now.
            row = rows[decision_id]
            self.dynamodb.update_item(
                TableName=HISTORY_TABLE,
                Key={"customer_id": row["customer_id"], "sent_at": row["sent_at"]},
                UpdateExpression="SET #state = :state",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":state": {"S": str(State.CANCELLED)}},
            )
            logged = self.dynamodb.update_item(
                TableName=self.log_table,
                Key=decision_log.key(decision_id),
                UpdateExpression="SET #state = :state, state_changed_at = :at, state_reason = :reason",
                ExpressionAttributeNames={"#state": decision_log.STATE},
                ExpressionAttributeValues={
                    ":state": {"S": str(State.CANCELLED)},
                    ":at": {"S": format_utc(now)},
                    ":reason": {"S": str(CancelReason.SUPERSEDED_BY_NEWER_INTERACTION)},
                },
                ReturnValues="ALL_NEW",
            )
            cancelled.append(decision_log.from_item(logged["Attributes"]))
            self.scheduler.delete(decision_id)
        if decision.approved and decision.send_at is not None:
            send_at = decision.send_at.astimezone(UTC).isoformat()
            self.dynamodb.put_item(
                TableName=HISTORY_TABLE,
                Item={
                    "customer_id": {"S": decision.customer_id},
                    "sent_at": {"S": f"{send_at}#{decision.decision_id}"},
                    "kind": {"S": str(decision.action)},
                    "send_at": {"S": send_at},
                    "interaction_id": {"S": decision.interaction_id},
                    "decision_id": {"S": decision.decision_id},
                    "state": {"S": str(decision.state)},
                    "closed_at": {"S": decision.input.closed_at.astimezone(UTC).isoformat()},
                },
            )
        self.dynamodb.put_item(TableName=self.log_table, Item=decision_log.to_item(decision, self.retention))
        if decision.state is State.PENDING and decision.send_at is not None:
            self.scheduler.ensure(decision.decision_id, decision.send_at, decision.decided_at)
        self.events.put_events(Entries=[publisher.entry(self.bus, d) for d in (decision, *cancelled)])
        return json.loads(decision.model_dump_json())  # type: ignore[no-any-return]


def sqs_batch(details: list[dict[str, Any]], arn: str) -> dict[str, Any]:
    """What Lambda's SQS event source hands the function for ten messages EventBridge's rule delivered."""
    from infra.lambda_runtime import sqs_event

    messages = []
    for d in details:
        body = json.dumps(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "InteractionClosed",
                "source": "bench.helpdesk",
                "account": "123456789012",
                "time": d["closed_at"],
                "region": REGION,
                "resources": [],
                "detail": d,
            }
        )
        messages.append(
            {
                "MessageId": str(uuid.uuid4()),
                "ReceiptHandle": str(uuid.uuid4()),
                "Body": body,
                "Attributes": {"ApproximateReceiveCount": "1"},
                "MD5OfBody": "-",
            }
        )
    return sqs_event(messages, f"arn:aws:sqs:{REGION}:123456789012:{arn}", REGION)


@dataclass
class Run:
    design: str
    meter: UnitMeter
    events: int
    batches: int
    failed: int
    seconds: float  # handler wall time
    sqs_chunks: int

    def usage(self) -> Usage:
        return Usage(
            events=self.events,
            dynamodb_requests=self.meter.total("dynamodb"),
            wru=self.meter.wru,
            rru=self.meter.rru,
            lambda_invocations=self.batches,
            lambda_seconds=self.seconds,
            sqs_requests=self.sqs_chunks + 2 * self.batches,
            eventbridge_requests=self.meter.total("events"),
            eventbridge_chunks=self.meter.eventbridge_chunks,
        )

    def per_event(self) -> dict[str, float]:
        """Requests per event by service (SQS from the batches)."""
        return {
            "dynamodb": self.meter.total("dynamodb") / self.events,
            "events": self.meter.total("events") / self.events,
            "sqs": (self.events + 2 * self.batches) / self.events,
            "lambda": self.batches / self.events,
        }

    @property
    def ms_per_decision(self) -> float:
        return 1000 * self.seconds / self.events

    @property
    def requests_per_decision(self) -> float:
        return sum(self.meter.calls.values()) / self.events

    @property
    def steady_requests_per_decision(self) -> float:
        """Requests per decision less the LIFECYCLE ones (ours: ledger reads, one write per event,
        the counting transaction)."""
        lifecycle = sum(self.meter.calls[name] for name in LIFECYCLE)
        return (sum(self.meter.calls.values()) - lifecycle) / self.events

    @property
    def steady_rru(self) -> float:
        """Read units less the GetItems of superseded follow-ups' log entries (ours: the ledger reads)."""
        return self.meter.rru - self.meter.rru_by["GetItem"]

    def as_json(self) -> dict[str, Any]:
        return {
            "design": self.design,
            "events": self.events,
            "batches": self.batches,
            "failed_records": self.failed,
            "requests": dict(sorted(self.meter.calls.items())),
            "requests_per_event": self.per_event(),
            "wru_per_event": self.meter.wru / self.events,
            "rru_per_event": self.meter.rru / self.events,
            "bytes_written_per_event": self.meter.bytes_written / self.events,
            "bytes_read_per_event": self.meter.bytes_read / self.events,
            "ms_per_decision": self.ms_per_decision,
            "usage": self.usage().as_json(),
        }


class _Design:
    """One design on a fresh emulator: decide batches, count what it asked of AWS."""

    def __init__(self, design: str, bench: Any) -> None:
        from shared.adapters import aws
        from shared.config import settings

        self.design, self.bench = design, bench
        self.meter = UnitMeter()
        self.arn = bench.stack.names.get("DecideQueue", "decide")
        if design == "ours":
            from functions.decide.app import handler

            self.handler: Callable[[dict[str, Any], Any], dict[str, Any]] = handler
            for service in ("dynamodb", "events", "scheduler"):
                self.meter.attach(aws.client(service))
        else:
            import boto3

            session = boto3.session.Session(region_name=REGION)
            dynamodb, events = session.client("dynamodb"), session.client("events")
            scheduler = session.client("scheduler")
            create_tables(dynamodb)
            for client in (dynamodb, events, scheduler):
                self.meter.attach(client)
            config = settings()
            naive = NaiveDecider(
                dynamodb,
                events,
                scheduler,
                bus=config.event_bus_name,
                log_table=config.decision_log_table,
                retention=timedelta(days=config.decision_retention_days),
            )
            self.handler = naive.handle

    def run(self, details: list[dict[str, Any]]) -> Run:
        from infra.lambda_runtime import LambdaContext

        batches = failed = chunks = 0
        seconds = 0.0
        for start in range(0, len(details), BATCH):
            event = sqs_batch(details[start : start + BATCH], self.arn)
            chunks += sum(math.ceil(len(r["body"].encode()) / SQS_CHUNK) for r in event["Records"])
            started = time.perf_counter()
            response = self.handler(event, LambdaContext("decide"))
            seconds += time.perf_counter() - started
            batches += 1
            failed += len(response["batchItemFailures"])
        return Run(self.design, self.meter, len(details), batches, failed, seconds, chunks)


def _run(design: str, past: list[dict[str, Any]], measured: list[dict[str, Any]]) -> tuple[Run, float]:
    with emulator() as bench, _quiet_product():
        runner = _Design(design, bench)
        started = time.perf_counter()
        if past:
            runner.run(past)
        history_seconds = time.perf_counter() - started
        runner.meter.clear()
        return runner.run(measured), history_seconds


def _timeline(
    rng: random.Random, customers: int, per_customer: int, start: datetime, days: int, *, who: str, tag: str
) -> list[Any]:
    """`per_customer` events for each of the customers `who`-0..n, closed at random over `days`, in time order."""
    found = []
    zones = random.Random(who)
    for n in range(customers):
        cid = f"cust-{who}-{n:05d}"
        zone = workload.customer_zone(zones)
        for k in range(per_customer):
            closed_at = start + timedelta(seconds=rng.uniform(0, days * 86400))
            found.append((closed_at, workload.detail(rng, f"{tag}-{cid}-{k}", cid, closed_at, zone)))
    found.sort(key=lambda pair: pair[0])
    return [d for _, d in found]


@dataclass
class CostResult:
    events: int
    customers: int
    ours: Run
    naive: Run
    same_decisions: bool
    compared: int
    seconds: float


@dataclass
class HistoryLevel:
    history: int
    customers: int
    events_per_customer: int
    runs: dict[str, Run]
    history_seconds: dict[str, float]
    same_decisions: bool


def measure_cost(events: int = 10_000, events_per_customer: int = 10, seed: int = 5) -> CostResult:
    started = time.perf_counter()
    rng = random.Random(seed)
    customers = max(1, events // events_per_customer)
    details = _timeline(rng, customers, events_per_customer, PRESENT, MEASURED_DAYS, who="cost", tag="now")[:events]
    (ours, _), (naive, _) = _in_parallel([("ours", [], details), ("naive", [], details)])
    same = ours.meter.published == naive.meter.published and len(ours.meter.published) == len(details)
    return CostResult(
        len(details), customers, ours, naive, same, len(naive.meter.published), time.perf_counter() - started
    )


def measure_histories(
    levels: tuple[int, ...] = (1, 100, 1000), customers: int = 1, events_per_customer: int = 50, seed: int = 7
) -> list[HistoryLevel]:
    found = []
    jobs: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = []
    for history in levels:
        rng = random.Random(f"{seed}-{history}")
        start = PRESENT - timedelta(days=HISTORY_DAYS)
        past = _timeline(rng, customers, history, start, HISTORY_DAYS, who=f"h{history}", tag="past")
        rng_now = random.Random(f"{seed}-now-{history}")
        measured = _timeline(
            rng_now, customers, events_per_customer, PRESENT, MEASURED_DAYS, who=f"h{history}", tag="now"
        )
        jobs += [(design, past, measured) for design in DESIGNS]
    done = iter([_job(job) for job in jobs])  # one at a time: times per decision are compared
    for history in levels:
        runs, seconds = {}, {}
        for design in DESIGNS:
            runs[design], seconds[design] = next(done)
        same = runs["ours"].meter.published == runs["naive"].meter.published
        found.append(HistoryLevel(history, customers, events_per_customer, runs, seconds, same))
    return found


def _job(job: tuple[str, list[dict[str, Any]], list[dict[str, Any]]]) -> tuple[Run, float]:
    return _run(*job)


def _in_parallel(jobs: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]]) -> list[tuple[Run, float]]:
    """Each (design, past, measured) on its own fresh moto in its own process (they share nothing)."""
    workers = min(len(jobs), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
    if workers <= 1:
        return [_job(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_job, jobs))
