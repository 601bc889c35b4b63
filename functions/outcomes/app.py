"""Outcomes function: SQS batch of FollowUpOutcome events -> each recorded once (shared.usecases.record_outcome).

- an outcome that can never be recorded as sent (malformed, or refused with a code such as
  DECISION_NOT_RELEASED) is parked in the dead-letter queue at once, with the code and the fields to
  change as message attributes, and its record counts as handled;
- a transient failure fails that record alone, so SQS retries it (a repeat changes nothing);
- anything else is a bug: it raises, the invocation fails and the Errors alarm shows it.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import wiring
from shared.adapters import dead_letters
from shared.adapters.envelope import FollowUpOutcomeEnvelope
from shared.adapters.tracing import LazyTracer
from shared.config import settings
from shared.domain.errors import field_problems
from shared.domain.outcomes import FollowUpOutcome

logger = Logger()
tracer = LazyTracer()  # X-Ray is imported at the first invocation, not at cold import
metrics = Metrics()


def parse_body(body: str) -> FollowUpOutcome | list[dict[str, str]]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return [{"field": "body", "message": "is not valid JSON"}]
    if not isinstance(payload, dict):
        return [{"field": "body", "message": "must be a JSON object (an EventBridge event)"}]
    try:
        envelope: FollowUpOutcomeEnvelope = parse(event=payload, model=FollowUpOutcomeEnvelope)
    except ValidationError as error:
        return field_problems(error)
    except RecursionError:
        return [{"field": "detail", "message": "is nested too deeply"}]
    return envelope.detail


def park(record: dict[str, Any], code: str, fields: list[str], message: str) -> bool:
    """Sends the untouched body to the dead-letter queue with the reason, for inspection and
    redrive; False (the record is retried) if SQS could not take it."""
    message_id = record["messageId"]
    if not dead_letters.park(settings().dead_letter_queue_url or "", record, code, fields, message):
        return False
    logger.warning("outcome refused and parked", extra={"message_id": message_id, "code": code})
    metrics.add_metric(name="RefusedOutcomes", unit=MetricUnit.Count, value=1)
    return True


def run(event: dict[str, Any]) -> dict[str, Any]:
    if not settings().dead_letter_queue_url:
        raise RuntimeError("DEAD_LETTER_QUEUE_URL is not set; cannot park an outcome")
    failures: set[str] = set()
    valid: list[tuple[dict[str, Any], FollowUpOutcome]] = []
    for record in event.get("Records", []):
        parsed = parse_body(record.get("body", ""))
        if isinstance(parsed, list):
            summary = "; ".join(f"{p['field']}: {p['message']}" for p in parsed)
            if not park(record, "INVALID_OUTCOME", sorted({p["field"] for p in parsed}), summary):
                failures.add(record["messageId"])
            continue
        valid.append((record, parsed))
    results = wiring.record_outcomes().run([outcome for _, outcome in valid])
    for (record, outcome), result in zip(valid, results, strict=True):
        if result.refused is not None:
            fields = [f"detail.{f['field']}" for f in result.refused.fields]
            if not park(record, result.refused.code, fields, str(result.refused)):
                failures.add(record["messageId"])
        elif result.failed is not None:
            failures.add(record["messageId"])
        else:
            logger.info(
                "outcome",
                extra={
                    "outcome_id": outcome.outcome_id,
                    "decision_id": outcome.decision_id,
                    "repeat": result.duplicate,
                },
            )
            metrics.add_metric(
                name="DuplicateOutcomes" if result.duplicate else f"Outcome.{outcome.type}",
                unit=MetricUnit.Count,
                value=1,
            )
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in sorted(failures)]}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run(event)
