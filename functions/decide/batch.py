"""One SQS batch of InteractionClosed events through the decide use case, with partial batch failures.

- a malformed event can never succeed: it is parked in the dead-letter queue at once, with the
  fields that were wrong as message attributes, and its record counts as handled; so is an event
  whose event_id was already used for other content (IDEMPOTENCY_KEY_REUSED);
- a transient failure (throttling, timeout, contention) fails that record alone, so SQS retries it;
- a record is done once its decision is committed: the decision log's stream publishes and counts
  it (functions/log_stream), so a redelivery only finds it decided;
- anything else is a bug: it raises, the invocation fails and the Errors alarm shows it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import ValidationError, parse

from shared import faults, wiring
from shared.adapters import dead_letters
from shared.adapters.clock import Clock
from shared.adapters.envelope import InteractionClosedEnvelope
from shared.config import settings
from shared.domain.errors import field_problems
from shared.domain.events import InteractionClosed

if TYPE_CHECKING:
    from shared.usecases.decide import Result

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
    problem = envelope.detail.clock_problem(clock.present())  # one time rule (shared.adapters.clock)
    if problem:
        return InvalidEvent([{"field": "detail.closed_at", "message": problem}])
    return envelope


class DecideBatch:
    """Handles one Lambda invocation's SQS batch: parse, park what can never succeed, run the use
    case on the rest, and report the records a retry can still complete."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def run(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        records: list[dict[str, Any]] = event.get("Records", [])
        clock = wiring.current_clock()
        failures: set[str] = set()
        valid: list[tuple[dict[str, Any], InteractionClosed]] = []
        for record in records:
            parsed = parse_body(record.get("body", ""), clock)
            if isinstance(parsed, InvalidEvent):
                summary = "; ".join(f"{p['field']}: {p['message']}" for p in parsed.problems)
                if not self.park(record, "INVALID_EVENT", parsed.fields, summary):
                    failures.add(record["messageId"])
                continue
            valid.append((record, parsed.detail))
        results = wiring.decide().run([detail for _, detail in valid])
        for (record, _), result in zip(valid, results, strict=True):
            if not self.settle(record, result):
                failures.add(record["messageId"])
        faults.checkpoint(faults.BEFORE_ACKNOWLEDGE)
        return {"batchItemFailures": [{"itemIdentifier": mid} for mid in sorted(failures)]}

    def settle(self, record: dict[str, Any], result: Result) -> bool:
        """Logs and counts one record's outcome; True when nothing is left for a retry to do."""
        message_id = record["messageId"]
        if result.refused is not None:
            error = result.refused
            fields = [f"detail.{f['field']}" for f in getattr(error, "fields", [])]
            return self.park(record, error.code, fields, str(error))
        if result.decision is None:
            return False  # a transient failure, already logged by the use case
        decision = result.decision
        logger.set_correlation_id(result.event.event_id)
        logger.info(
            "decided",
            extra={
                "message_id": message_id,
                "event_id": result.event.event_id,
                "decision_id": decision.decision_id,
                "customer_id": decision.customer_id,
                "action": str(decision.action),
                "reason": str(decision.reason),
                "duplicate": result.duplicate,
            },
        )
        if result.duplicate:
            self.metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=1)
        else:
            self.metrics.add_metric(name=f"Decision.{decision.action}", unit=MetricUnit.Count, value=1)
            self.metrics.add_metric(name=f"Reason.{decision.reason}", unit=MetricUnit.Count, value=1)
        return result.done

    def park(self, record: dict[str, Any], code: str, fields: list[str], message: str) -> bool:
        """Sends the untouched body to the dead-letter queue with the reason, for inspection and
        redrive; False (the record is retried) if SQS could not take it."""
        queue_url = settings().dead_letter_queue_url
        if not queue_url:
            raise RuntimeError("DEAD_LETTER_QUEUE_URL is not set; cannot park an event")
        message_id = record["messageId"]
        if not dead_letters.park(queue_url, record, code, fields, message):
            return False
        if code == "INVALID_EVENT":
            logger.warning("invalid event parked", extra={"message_id": message_id, "fields": fields})
            self.metrics.add_metric(name="InvalidEvents", unit=MetricUnit.Count, value=1)
            for name in sorted({metric_field(f) for f in fields}):
                self.metrics.add_metric(name=f"InvalidField.{name}", unit=MetricUnit.Count, value=1)
        else:
            logger.warning("event refused and parked", extra={"message_id": message_id, "code": code})
            self.metrics.add_metric(name="RefusedEvents", unit=MetricUnit.Count, value=1)
        return True
