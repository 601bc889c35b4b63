"""One SQS batch of InteractionClosed events through the governor, with partial batch failures.

- a malformed event can never succeed: it is parked in the dead-letter queue at once, with the
  fields that were wrong as message attributes, and its record counts as handled;
- a transient failure (throttling, timeout, contention) fails that record alone, so SQS retries it;
- decisions are published in batched PutEvents after the commits; a record whose decision could
  not be published is failed too, and its redelivery republishes the committed decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser import ValidationError, parse

from shared import faults, wiring
from shared.adapters import aws
from shared.adapters.clock import Clock
from shared.adapters.envelope import InteractionClosedEnvelope
from shared.config import settings
from shared.domain.decision import Decision
from shared.domain.errors import field_problems
from shared.domain.events import InteractionClosed

logger = Logger(child=True)


@dataclass(frozen=True)
class InvalidEvent:
    problems: list[dict[str, str]]

    @property
    def fields(self) -> list[str]:
        return sorted({p["field"] for p in self.problems})


KNOWN_FIELDS = frozenset(
    {name for name in InteractionClosedEnvelope.model_fields if name != "detail_type"}
    | {"detail-type"}
    | {f"detail.{name}" for name in InteractionClosed.model_fields}
)


def metric_field(field: str) -> str:
    """Metric names come from a fixed set, so a hostile event cannot mint new metrics."""
    return field if field in KNOWN_FIELDS else "unknown_field"


def parse_body(body: str, clock: Clock) -> InteractionClosedEnvelope | InvalidEvent:
    try:
        payload = json.loads(body)
    except ValueError:
        return InvalidEvent([{"field": "body", "message": "is not valid JSON"}])
    except RecursionError:
        return InvalidEvent([{"field": "body", "message": "is nested too deeply"}])
    if not isinstance(payload, dict):
        return InvalidEvent([{"field": "body", "message": "must be a JSON object (an EventBridge event)"}])
    try:
        envelope: InteractionClosedEnvelope = parse(event=payload, model=InteractionClosedEnvelope)
    except ValidationError as error:
        return InvalidEvent(field_problems(error))
    except RecursionError:
        return InvalidEvent([{"field": "detail", "message": "is nested too deeply"}])
    if clock.refuses_future_events:
        problem = envelope.detail.clock_problem(clock.now())
        if problem:
            return InvalidEvent([{"field": "detail.closed_at", "message": problem}])
    return envelope


class DecideBatch:
    """Handles one Lambda invocation's SQS batch."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.governor = wiring.governor()
        self.parsed: dict[str, InteractionClosedEnvelope | InvalidEvent] = {}
        self.decided: list[tuple[str, Decision]] = []

    def run(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        records = event.get("Records", [])
        clock = wiring.current_clock()
        self.parsed = {r["messageId"]: parse_body(r.get("body", ""), clock) for r in records}
        valid = [p.detail.customer_id for p in self.parsed.values() if isinstance(p, InteractionClosedEnvelope)]
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        try:
            self.governor.prefetch(valid)
        except Exception:
            # Every record would fail the same way; let SQS retry them all, individually reported.
            logger.exception("ledger prefetch failed")
            return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}
        with processor(records=records, handler=self.record):
            processor.process()
        response = processor.response()
        unpublished = self.publish()
        faults.checkpoint(faults.AFTER_PUBLISH)
        uncounted = self.count()
        faults.checkpoint(faults.AFTER_COUNT)
        failures = {str(f["itemIdentifier"]) for f in response["batchItemFailures"]} | unpublished | uncounted
        faults.checkpoint(faults.BEFORE_ACKNOWLEDGE)
        return {"batchItemFailures": [{"itemIdentifier": mid} for mid in sorted(failures)]}

    def record(self, record: SQSRecord) -> None:
        parsed = self.parsed[record.message_id]
        if isinstance(parsed, InvalidEvent):
            self.park(record, parsed)
            return
        event = parsed.detail
        logger.set_correlation_id(event.event_id)
        outcome = self.governor.decide(event)
        decision = outcome.decision
        self.decided.append((record.message_id, decision))
        logger.info(
            "decided",
            extra={
                "message_id": record.message_id,
                "event_id": event.event_id,
                "decision_id": decision.decision_id,
                "customer_id": decision.customer_id,
                "action": str(decision.action),
                "reason": str(decision.reason),
                "duplicate": outcome.duplicate,
            },
        )
        if outcome.duplicate:
            self.metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=1)
        else:
            self.metrics.add_metric(name=f"Decision.{decision.action}", unit=MetricUnit.Count, value=1)
            self.metrics.add_metric(name=f"Reason.{decision.reason}", unit=MetricUnit.Count, value=1)

    def park(self, record: SQSRecord, invalid: InvalidEvent) -> None:
        """Sends the untouched body to the dead-letter queue with the reason, for inspection and redrive."""
        queue_url = settings().dead_letter_queue_url
        if not queue_url:
            raise RuntimeError("DEAD_LETTER_QUEUE_URL is not set; cannot park an invalid event")
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in invalid.problems)
        aws.client("sqs").send_message(
            QueueUrl=queue_url,
            MessageBody=record.body,
            MessageAttributes={
                "governor_error": {"DataType": "String", "StringValue": "INVALID_EVENT"},
                "governor_fields": {"DataType": "String", "StringValue": ",".join(invalid.fields)},
                "governor_message": {"DataType": "String", "StringValue": summary[:1000]},
                "governor_source_message_id": {"DataType": "String", "StringValue": record.message_id},
            },
        )
        logger.warning("invalid event parked", extra={"message_id": record.message_id, "fields": invalid.fields})
        self.metrics.add_metric(name="InvalidEvents", unit=MetricUnit.Count, value=1)
        for name in sorted({metric_field(f) for f in invalid.fields}):
            self.metrics.add_metric(name=f"InvalidField.{name}", unit=MetricUnit.Count, value=1)

    def count(self) -> set[str]:
        """Adds this batch's decisions to the daily counters (exactly once); returns the message ids
        whose decision is not counted yet, so their redelivery counts them."""
        if not self.decided:
            return set()
        try:
            left = wiring.stats().count([d for _, d in self.decided], wiring.current_clock().now())
        except Exception:
            logger.exception("counting decisions failed")
            return {mid for mid, _ in self.decided}
        missing = {d.decision_id for d in left}
        return {mid for mid, d in self.decided if d.decision_id in missing}

    def publish(self) -> set[str]:
        """Publishes this batch's decisions; returns the message ids whose decision is still unpublished."""
        if not self.decided:
            return set()
        try:
            unpublished = wiring.publisher().publish([d for _, d in self.decided])
        except Exception:
            logger.exception("publishing decisions failed")
            return {mid for mid, _ in self.decided}
        missing = {d.decision_id for d in unpublished}
        if missing:
            logger.warning("decisions left unpublished", extra={"decision_ids": sorted(missing)})
        return {mid for mid, d in self.decided if d.decision_id in missing}
