"""Parking a queue record that can never succeed: its untouched body goes to the dead-letter queue
with the reason as message attributes, for inspection and SQS's own redrive. One place for every
queue function, so a parked message reads the same whichever queue it came from."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from shared.adapters import aws

logger = Logger(child=True)


def park(queue_url: str, record: dict[str, Any], code: str, fields: list[str], message: str) -> bool:
    """True once SQS holds it; False (leave the record to be retried) if SQS could not take it now.
    An error no retry can fix (a bug, a missing queue) raises."""
    message_id = record["messageId"]
    try:
        aws.client("sqs").send_message(
            QueueUrl=queue_url,
            MessageBody=record.get("body", ""),
            MessageAttributes={
                "governor_error": {"DataType": "String", "StringValue": code},
                "governor_fields": {"DataType": "String", "StringValue": ",".join(fields) or "-"},
                "governor_message": {"DataType": "String", "StringValue": message[:1000]},
                "governor_source_message_id": {"DataType": "String", "StringValue": message_id},
            },
        )
    except aws.AWS_ERRORS as error:
        if not aws.retryable(error):
            raise
        logger.warning("parking failed", extra={"message_id": message_id, "error": type(error).__name__})
        return False
    return True
