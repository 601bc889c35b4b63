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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import shards, workload
from bench.aws_path import HISTORY_DAYS, MEASURED_DAYS, PRESENT, _quiet_product
from bench.cost import SQS_CHUNK, UnitMeter, Usage
from bench.emulator import REGION, Invocations, LogStream, TimedHandler, emulator, log_stream

BATCH = 10
IDEMPOTENCY_TABLE = "naive-idempotency"
HISTORY_TABLE = "naive-history"
LOG_TABLE = "naive-decision-log"
NAIVE_DAY_INDEX = "by-day"
DESIGNS = ("ours", "naive")
# Requests that follow a decision's lifecycle (issue 11), not the customer's history: a held
# follow-up's CreateSchedule; a superseded one's DeleteSchedule, its FollowUpCancelled entry (more
# PutEvents) and, for ours, the GetItem of its cancelled log entry (to announce it). Both designs
# make the same schedule requests (checked); a longer history changes how many follow-ups are held
# and superseded (fuller caps, other approvals), so these are left out of the flat-cost check.
# The indexes each design pays for. The naive design answers the same admin questions (decisions of a
# customer; of a day, filtered by reason; exports; the simulation's reads of a window) from a decision
# log table of its own: the product's (template.yaml: its key, its `by-customer` index, the same item,
# decision_log.to_item, so a more compact item lowers both bills) plus the index a team lists a day
# with, `by-day` (day, decided_at), projecting what `by-customer` projects. The product lists a day
# from the day pages its log stream function writes with the counts instead (shared.adapters.day_pages):
# that is a design difference the ratio is meant to show, not a difference in what is answered. Both
# pay every index write the same way (UnitMeter); the naive history table (customer_id, sent_at) and
# Powertools' idempotency table (id) are read by key and need none.
INDEX_NOTES = (
    "indexes: the naive design writes the product's log item to a log table of its own with the product's key and",
    "  index (by-customer) plus by-day (day, decided_at), the index a team lists a day with; ours lists a day from",
    "  the day pages its stream function writes with the counts; its history table (customer_id, sent_at) and",
    "  Powertools' idempotency table (id) are read by key and have none",
)
# The workload and how both designs meet the log's stream (bench/shards.py), for the notes.
STREAM_NOTES = (
    "workload: one day of a large contact centre (bench/workload.contact_centre_day): N customers, each with ONE",
    "  interaction closed at random within one UTC day (decided within it on the event clock), in time order, and",
    "  1-3 past interactions at random over the prior 90 days (ending 2 days before, so every past follow-up is",
    "  settled by then), decided first through the same design (drained and fired after every batch), not measured",
    "stream batches: ours publishes and schedules (LogStreamFunction) and counts (LogCountFunction) from the",
    "  decision log's stream; the bench hands each reader what was committed once the decide batches since its",
    "  last drain hold ONE SHARD's batching window at 1 M events a day, the full log's 40 shards (bench/shards.py:",
    "  MaximumBatchingWindowInSeconds x 1,000,000 / 86,400 / 40: publishing 5 s -> ~1.4 events an invocation,",
    "  counting 300 s -> ~87), as Lambda would, with the lifecycle too; the naive design has no stream and counts",
    "  nothing (its publishing and scheduling are inline, per record, and its per-batch costs are the SQS batch's,",
    "  the same batches of 10 as ours). With the lifecycle, the schedules due by the next decide batch fire right",
    "  after each publishing drain, each as of its own send time, for both designs, and ours publishes their",
    "  changes apart (their counting rides in the next count batch, as in production); nothing of a customer",
    "  happens between its follow-up's send time",
    "  and that firing (one measured event per customer, the history settled), so the releases are those of firing",
    "  on time. All measured events are one day's, so a stream batch touches one day's counters, as in production",
)
LIFECYCLE = ("dynamodb.GetItem", "events.PutEvents", "scheduler.CreateSchedule", "scheduler.DeleteSchedule")


def create_tables(dynamodb: Any, product_log: str) -> None:
    """The naive design's tables: Powertools' idempotency table (pk `id`), the history table, and its
    decision log (the product's log table as provisioned from template.yaml, plus `by-day`)."""
    from shared.adapters import decision_log

    table = dynamodb.describe_table(TableName=product_log)["Table"]
    indexes = [
        {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
        for i in table.get("GlobalSecondaryIndexes", [])
    ]
    (by_customer,) = [i for i in indexes if i["IndexName"] == decision_log.BY_CUSTOMER]
    day_keys = [{"AttributeName": "day", "KeyType": "HASH"}, {"AttributeName": "decided_at", "KeyType": "RANGE"}]
    indexes.append({"IndexName": NAIVE_DAY_INDEX, "KeySchema": day_keys, "Projection": by_customer["Projection"]})
    attributes = {a["AttributeName"]: a for a in table["AttributeDefinitions"]}
    attributes["day"] = {"AttributeName": "day", "AttributeType": "S"}
    dynamodb.create_table(
        TableName=LOG_TABLE,
        KeySchema=table["KeySchema"],
        AttributeDefinitions=list(attributes.values()),
        GlobalSecondaryIndexes=indexes,
        BillingMode="PAY_PER_REQUEST",
    )
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

    @staticmethod
    def _ledger(customer_id: str, rows: dict[str, dict[str, Any]]) -> Any:
        """The engine's ledger built from the customer's whole history (never pruned)."""
        from shared.domain.contacts import ContactLedger, FollowUp
        from shared.domain.decision import Action, State

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
        return ContactLedger(customer_id, version=len(followups), followups=followups)

    def release(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The naive ReleaseFunction (a held follow-up's schedule fired): read the log entry, Query
        the history, re-check with the same engine, then plain writes (history row, log entry) and a
        PutEvents of the settled decision. Same read-then-write race as the decider."""
        from shared.adapters import decision_log, publisher
        from shared.domain import engine
        from shared.domain.decision import State

        decision_id = str(event["decision_id"])
        found = self.dynamodb.get_item(
            TableName=self.log_table, Key=decision_log.key(decision_id), ConsistentRead=True
        ).get("Item")
        if found is None:
            return {"decision_id": decision_id, "changed": False}
        decision = decision_log.from_item(found)
        if decision.state is not State.PENDING:  # superseded (cancelled) at decision time
            return {"decision_id": decision_id, "changed": False}
        now = self.clock.now()
        rows = {item["decision_id"]["S"]: item for item in self._history(decision.customer_id)}
        ledger = self._ledger(decision.customer_id, rows)
        state, reason, _ = engine.recheck(ledger.find(decision_id), decision, ledger, self.policy(), now)
        row = rows[decision_id]
        self.dynamodb.update_item(
            TableName=HISTORY_TABLE,
            Key={"customer_id": row["customer_id"], "sent_at": row["sent_at"]},
            UpdateExpression="SET #state = :state",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":state": {"S": str(state)}},
        )
        self.dynamodb.update_item(
            TableName=self.log_table, **decision_log.state_update(decision_id, state, reason, now)
        )
        settled = decision.with_state(state, reason, now)
        self.events.put_events(Entries=[publisher.entry(self.bus, settled)])
        return {"decision_id": decision_id, "state": str(state), "changed": True}

    def _process(self, detail: dict[str, Any]) -> dict[str, Any]:
        from shared.adapters import decision_log, publisher
        from shared.domain import engine
        from shared.domain.decision import CancelReason, Decision, State, format_utc
        from shared.domain.events import InteractionClosed

        event = InteractionClosed.model_validate(detail)
        rows = {item["decision_id"]["S"]: item for item in self._history(event.customer_id)}
        ledger = self._ledger(event.customer_id, rows)
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
        item = {**decision_log.to_item(decision, self.retention), "day": {"S": f"{decision.decided_at:%Y-%m-%d}"}}
        self.dynamodb.put_item(TableName=self.log_table, Item=item)
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
    meter: UnitMeter  # the decide path: the decide function (and, with a log stream, its function)
    events: int
    batches: int
    failed: int
    seconds: float  # decide handler wall time
    sqs_chunks: int
    # The lifecycle: held follow-ups' schedules fired (one Scheduler invocation and one release
    # function invocation each), with what they asked of AWS. Empty when not fired.
    lifecycle: UnitMeter = field(default_factory=UnitMeter)
    releases: Invocations = field(default_factory=Invocations)
    stream: Invocations = field(default_factory=Invocations)  # LogStreamFunction on the decide path
    lifecycle_stream: Invocations = field(default_factory=Invocations)  # ... on the releases' changes
    outside_aws_seconds: float = 0.0  # decide handler time outside the metered AWS calls
    lifecycle_fired: bool = False

    def meters(self, lifecycle: bool = False) -> list[UnitMeter]:
        return [self.meter, self.lifecycle] if lifecycle else [self.meter]

    def usage(self, lifecycle: bool = False) -> Usage:
        """What the decide path used (the issue's baseline scope); with `lifecycle`, plus the releases."""
        meters = self.meters(lifecycle)
        functions = [self.stream, *((self.releases, self.lifecycle_stream) if lifecycle else ())]
        return Usage(
            events=self.events,
            dynamodb_requests=sum(m.total("dynamodb") for m in meters),
            wru=sum(m.wru for m in meters),
            rru=sum(m.rru for m in meters),
            lambda_invocations=self.batches + sum(f.count for f in functions),
            lambda_seconds=self.seconds + sum(f.seconds for f in functions),
            sqs_requests=self.sqs_chunks + 2 * self.batches,
            eventbridge_requests=sum(m.total("events") for m in meters),
            eventbridge_chunks=sum(m.eventbridge_chunks for m in meters),
            index_wru=sum(m.index_wru for m in meters),
            scheduler_invocations=self.releases.count if lifecycle else 0,
            lambda_model_seconds=self.outside_aws_seconds
            + sum(f.outside_aws_seconds for f in functions)
            + sum(m.assumed_latency_seconds() for m in meters),
        )

    def per_event(self, lifecycle: bool = False) -> dict[str, float]:
        """Requests per event by service (SQS from the batches); Lambda invocations of every function."""
        meters = self.meters(lifecycle)
        functions = [self.stream, *((self.releases, self.lifecycle_stream) if lifecycle else ())]
        return {
            "dynamodb": sum(m.total("dynamodb") for m in meters) / self.events,
            "events": sum(m.total("events") for m in meters) / self.events,
            "scheduler": sum(m.total("scheduler") for m in meters) / self.events,
            "sqs": (self.events + 2 * self.batches) / self.events,
            "lambda": (self.batches + sum(f.count for f in functions)) / self.events,
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
        found: dict[str, Any] = {
            "design": self.design,
            "events": self.events,
            "batches": self.batches,
            "failed_records": self.failed,
            "requests": dict(sorted(self.meter.calls.items())),
            "requests_per_event": self.per_event(),
            "wru_per_event": self.meter.wru / self.events,
            "wru_per_event_by_table": {k: v / self.events for k, v in sorted(self.meter.wru_by.items())},
            "log_stream_events_per_batch": self.events / self.stream.count if self.stream.count else None,
            "index_wru_per_event": self.meter.index_wru / self.events,
            "index_wru_per_event_by_index": {k: v / self.events for k, v in sorted(self.meter.index_wru_by.items())},
            "rru_per_event": self.meter.rru / self.events,
            "bytes_written_per_event": self.meter.bytes_written / self.events,
            "bytes_read_per_event": self.meter.bytes_read / self.events,
            "ms_per_decision": self.ms_per_decision,
            "log_stream_invocations": self.stream.count,
            "usage": self.usage().as_json(),
        }
        if self.lifecycle_fired:
            found["lifecycle"] = {
                "releases_fired": self.releases.count,
                "release_seconds": self.releases.seconds,
                "log_stream_invocations": self.lifecycle_stream.count,
                "requests": dict(sorted(self.lifecycle.calls.items())),
                "wru": self.lifecycle.wru,
                "wru_per_event_by_table": {k: v / self.events for k, v in sorted(self.lifecycle.wru_by.items())},
                "index_wru": self.lifecycle.index_wru,
                "rru": self.lifecycle.rru,
                "requests_per_event_with_lifecycle": self.per_event(lifecycle=True),
                "usage_with_lifecycle": self.usage(lifecycle=True).as_json(),
            }
        return found


@dataclass
class _Function:
    """A function of the template as infra.local.schedules fires it: its handler, timed and counted."""

    logical_id: str
    timed: TimedHandler
    timeout: float = 900.0

    def load(self) -> Callable[[dict[str, Any], Any], Any]:
        return self.timed


# design, past, measured, lifecycle, settle the past (fire its schedules whatever `lifecycle` says)
Job = tuple[str, list[dict[str, Any]], list[dict[str, Any]], bool, bool]
END_OF_TIME = datetime(9999, 1, 1, tzinfo=UTC)


class _Design:
    """One design on a fresh emulator: decide batches, count what it asked of AWS; fire the held
    follow-ups' schedules as they fall due (infra.local.schedules, the local stack's Scheduler)."""

    def __init__(self, design: str, bench: Any) -> None:
        import boto3

        from infra.local.schedules import ScheduleRunner
        from shared import wiring
        from shared.adapters import aws
        from shared.config import settings

        self.design, self.bench = design, bench
        self.meter = UnitMeter()
        self.lifecycle = UnitMeter(enabled=False)
        self.arn = bench.stack.names.get("DecideQueue", "decide")
        session = boto3.session.Session(region_name=REGION)
        release: Callable[[dict[str, Any], Any], Any]
        if design == "ours":
            from functions.decide.app import handler
            from functions.release.app import handler as release

            self.handler: Callable[[dict[str, Any], Any], dict[str, Any]] = handler
            clients = [aws.client(service) for service in ("dynamodb", "events", "scheduler")]
        else:
            dynamodb, events = session.client("dynamodb"), session.client("events")
            scheduler = session.client("scheduler")
            config = settings()
            create_tables(dynamodb, config.decision_log_table)
            clients = [dynamodb, events, scheduler]
            naive = NaiveDecider(
                dynamodb,
                events,
                scheduler,
                bus=config.event_bus_name,
                log_table=LOG_TABLE,
                retention=timedelta(days=config.decision_retention_days),
            )
            self.handler, release = naive.handle, naive.release
        for client in clients:
            self.meter.attach(client)
            self.lifecycle.attach(client)

        def in_aws() -> float:
            return self.meter.call_seconds + self.lifecycle.call_seconds

        # The naive design publishes itself: it has no stream consumer (a stream on the shared log
        # table would be read by nobody).
        self.stream: LogStream | None = log_stream(bench.stack, in_aws) if design == "ours" else None
        self.release = _Function("ReleaseFunction", TimedHandler(release, in_aws))
        # EventBridge Scheduler itself: the harness's own (unmetered) clients list and delete schedules.
        clock = wiring.current_clock()
        self.scheduler = ScheduleRunner(
            session.client("scheduler"),
            bench.sqs,
            {bench.stack.get_att("ReleaseFunction", "Arn"): self.release},
            as_of=getattr(clock, "as_of", None),
        )
        self.decide_stream = Invocations()
        self.lifecycle_stream = Invocations()

    def run(self, details: list[dict[str, Any]], lifecycle: bool = False, every_batch: bool = False) -> Run:
        """Decide `details` in batches of ten. Each reader of the log's stream is handed what was
        committed once the decide batches since its last drain hold a shard's batching window of
        events (bench.shards), or after every decide batch with `every_batch`. With `lifecycle`,
        the schedules due by the next batch's first event fire right after each drain of the
        publishing reader (and before the first batch), each as of its own send time, and the
        publishing of their changes is drained apart, so the decide path's bill and the releases'
        stay apart (the naive design fires at the same moments); their counting rides with the
        decide path's next count batch, as it would in production (a few counter adds, within the
        batch's transaction). Firing at the drains is exact when no event in a window has a
        follow-up held by its customer (one event per customer in the window: the measured day of
        measure_cost); a history with several events per customer is decided `every_batch`."""
        from infra.lambda_runtime import LambdaContext

        batches = failed = chunks = 0
        seconds = outside = 0.0
        fire = lifecycle  # due schedules fire before the next batch
        for start in range(0, len(details), BATCH):
            chunk = details[start : start + BATCH]
            if fire:
                self._fire(_decided_at(chunk[0]))
                fire = False
            event = sqs_batch(chunk, self.arn)
            chunks += sum(math.ceil(len(r["body"].encode()) / SQS_CHUNK) for r in event["Records"])
            in_aws = self.meter.call_seconds
            started = time.perf_counter()
            response = self.handler(event, LambdaContext("decide"))
            took = time.perf_counter() - started
            seconds += took
            outside += took - (self.meter.call_seconds - in_aws)
            batches += 1
            failed += len(response["batchItemFailures"])
            if self.stream is not None:
                drained, published = self.stream.decided(len(chunk), every_batch)
                self.decide_stream.add(drained)
                fire = lifecycle and published
            else:
                fire = lifecycle
        if self.stream is not None:
            self.decide_stream.add(self.stream.flush())
        if lifecycle:  # and then every follow-up still held, each as of its own send time
            self._fire(END_OF_TIME)
        return Run(
            self.design,
            self.meter,
            len(details),
            batches,
            failed,
            seconds,
            chunks,
            lifecycle=self.lifecycle,
            releases=self.release.timed.calls,
            stream=self.decide_stream,
            lifecycle_stream=self.lifecycle_stream,
            outside_aws_seconds=outside,
            lifecycle_fired=lifecycle,
        )

    def clear(self) -> None:
        self.meter.clear()
        self.lifecycle.clear()
        self.release.timed.calls = Invocations()
        self.decide_stream, self.lifecycle_stream = Invocations(), Invocations()

    def _fire(self, until: datetime) -> None:
        self.meter.enabled, self.lifecycle.enabled = False, True
        try:
            self.scheduler.run_due(until)
            if self.stream is not None:
                self.lifecycle_stream.add(self.stream.drain(shards.PUBLISHING))
        finally:
            self.meter.enabled, self.lifecycle.enabled = True, False


def _decided_at(detail: dict[str, Any]) -> datetime:
    """When the event clock decides this detail: closed_at + its delay (shared.adapters.clock.EventClock)."""
    from shared.adapters.clock import EventClock

    closed = datetime.fromisoformat(str(detail["closed_at"]).replace("Z", "+00:00"))
    return closed.astimezone(UTC) + EventClock.delay


def _run(
    design: str,
    past: list[dict[str, Any]],
    measured: list[dict[str, Any]],
    lifecycle: bool = False,
    settle_past: bool = False,
    *,
    every_batch: bool = False,
) -> tuple[Run, float]:
    """`measured` after `past` on a fresh emulator. `settle_past`: the past's held follow-ups are
    released or cancelled as they fall due, with or without `lifecycle` (a history, not the measured
    day: otherwise the measured events would supersede follow-ups held for months). `every_batch`:
    the measured events too are drained (and due schedules fired) after every decide batch instead
    of at the window (tests compare)."""
    with emulator() as bench, _quiet_product():
        runner = _Design(design, bench)
        started = time.perf_counter()
        if past:
            # A customer's past interactions can supersede each other's held follow-ups, which
            # the stream schedules: drained after every batch, nothing is held unscheduled.
            settle = lifecycle or settle_past
            runner.run(past, settle, every_batch=settle)
        history_seconds = time.perf_counter() - started
        runner.clear()
        return runner.run(measured, lifecycle, every_batch), history_seconds


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
    same_decisions: bool  # on the decide path, and, with the lifecycle, every release and cancellation
    compared: int
    seconds: float
    lifecycle: bool = False  # the held follow-ups' schedules were fired (releases priced)
    same_settlements: bool = True  # what the releases published, byte for byte
    past_events: int = 0  # the customers' histories, decided first through each design, not measured

    @property
    def approval_share(self) -> float:
        """Decisions that approved a follow-up (survey or callback), of those ours published: an
        approval costs more writes than a suppression, so the cost per event follows this share."""
        actions = [json.loads(detail).get("action") for detail in self.ours.meter.published.values()]
        return sum(1 for action in actions if action not in (None, "none")) / max(1, len(actions))

    @property
    def held(self) -> int:
        """Schedules fired (one per follow-up held at decision time), the same for both designs."""
        return self.ours.releases.count


@dataclass
class HistoryLevel:
    history: int
    customers: int
    events_per_customer: int
    runs: dict[str, Run]
    history_seconds: dict[str, float]
    same_decisions: bool


def measure_cost(events: int = 10_000, seed: int = 5, lifecycle: bool = True) -> CostResult:
    """Both designs over one day of a large contact centre (workload.contact_centre_day): `events`
    customers with one interaction each that day, each customer's history (1-3 earlier interactions
    over the prior ~90 days) decided first through the same design and not measured. With
    `lifecycle`, every held follow-up's schedule fires as it falls due (at the stream's drains, see
    _Design.run; those still held at the end, as of their send times), releases priced apart."""
    started = time.perf_counter()
    day = workload.contact_centre_day(events, PRESENT, seed=seed)
    details = day.measured
    (ours, _), (naive, _) = _in_parallel(
        [("ours", day.past, details, lifecycle, True), ("naive", day.past, details, lifecycle, True)]
    )
    same = ours.meter.published == naive.meter.published and len(ours.meter.published) == len(details)
    settled = ours.lifecycle.published == naive.lifecycle.published and ours.releases.count == naive.releases.count
    return CostResult(
        len(details),
        day.customers,
        ours,
        naive,
        same and settled,
        len(naive.meter.published),
        time.perf_counter() - started,
        lifecycle=lifecycle,
        same_settlements=settled,
        past_events=len(day.past),
    )


def measure_histories(
    levels: tuple[int, ...] = (1, 100, 1000), customers: int = 1, events_per_customer: int = 50, seed: int = 7
) -> list[HistoryLevel]:
    found = []
    jobs: list[Job] = []
    for history in levels:
        rng = random.Random(f"{seed}-{history}")
        start = PRESENT - timedelta(days=HISTORY_DAYS)
        past = _timeline(rng, customers, history, start, HISTORY_DAYS, who=f"h{history}", tag="past")
        rng_now = random.Random(f"{seed}-now-{history}")
        measured = _timeline(
            rng_now, customers, events_per_customer, PRESENT, MEASURED_DAYS, who=f"h{history}", tag="now"
        )
        jobs += [(design, past, measured, False, False) for design in DESIGNS]
    # Level by level, the two designs side by side (two processes): every level runs under the same
    # conditions, so a design's time per decision compares across levels; half the wall time.
    done = iter([found for level in range(len(levels)) for found in _in_parallel(jobs[2 * level : 2 * level + 2])])
    for history in levels:
        runs, seconds = {}, {}
        for design in DESIGNS:
            runs[design], seconds[design] = next(done)
        same = runs["ours"].meter.published == runs["naive"].meter.published
        found.append(HistoryLevel(history, customers, events_per_customer, runs, seconds, same))
    return found


def _job(job: Job) -> tuple[Run, float]:
    return _run(*job)


def _in_parallel(jobs: list[Job]) -> list[tuple[Run, float]]:
    """Each (design, past, measured, lifecycle, settle_past) on its own fresh moto in its own process
    (they share nothing)."""
    workers = min(len(jobs), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
    if workers <= 1:
        return [_job(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_job, jobs))
