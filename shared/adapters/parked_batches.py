"""The log stream dead-letter queue: where Lambda describes a stream batch that failed every retry
(its OnFailure destination, for either reader of the decision log's stream). Each message names
the function that gave up, the shard and the sequence range, not the records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.adapters import aws


@dataclass(frozen=True)
class ParkedBatch:
    receipt: str  # the SQS receipt handle, to delete the message once replayed
    message_id: str
    function: str  # the function's name, from the ARN Lambda wrote
    stream_arn: str
    shard_id: str
    first: str
    last: str

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> ParkedBatch:
        body = json.loads(message["Body"])
        info = body["DDBStreamBatchInfo"]
        arn = str(body["requestContext"]["functionArn"])
        # arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
        parts = arn.split(":")
        return cls(
            message["ReceiptHandle"],
            message["MessageId"],
            parts[6] if len(parts) > 6 else arn,
            info["streamArn"],
            info["shardId"],
            str(info["startSequenceNumber"]),
            str(info["endSequenceNumber"]),
        )


class ParkedBatches(aws.AwsPort):
    service = "sqs"

    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        super().__init__(client)

    def receive(self, count: int) -> list[dict[str, Any]]:
        """Up to `count` (at most 10) messages, hidden from other readers for 5 minutes."""
        answer = self.client.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=min(10, count), VisibilityTimeout=300, WaitTimeSeconds=0
        )
        return list(answer.get("Messages", []))

    def done(self, batch: ParkedBatch) -> None:
        self.client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=batch.receipt)
