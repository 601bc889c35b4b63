"""A DynamoDB stream's records by sequence range (the replay of a parked batch), and the one
translation of a GetRecords record into the form Lambda hands a function: binary values base64,
as in Lambda's JSON (the local event source mapping uses it too, infra/local/streams.py).

A stream keeps its records 24 hours: a range older than that is gone (TrimmedDataAccessException,
or records missing at its start), and `read` says so rather than replaying part of it."""

from __future__ import annotations

import base64
from typing import Any

from shared.adapters import aws

EMPTY_READS = 3


class RangeGone(Exception):
    """The stream no longer holds the range (older than its 24 hours), or never held it."""


class RangeIncomplete(Exception):
    """The read ended before the range's last record (the shard answered empty for a while): part
    of a range must never be replayed as the whole; read it again later."""


def lambda_json(value: Any) -> Any:
    """DynamoDB JSON from boto3 (bytes for binary values) as Lambda's event carries it (base64)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: lambda_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lambda_json(v) for v in value]
    return value


class StreamRecords(aws.AwsPort):
    service = "dynamodbstreams"

    def read(self, stream_arn: str, shard_id: str, first: str, last: str) -> list[dict[str, Any]]:
        """The records of one shard from sequence number `first` through `last`, in order, each as
        GetRecords gives it (images still boto3's). Raises RangeGone if the stream does not hold
        `first` any more."""
        try:
            iterator = self.client.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=first
            )["ShardIterator"]
        except aws.AWS_ERRORS as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            if code in ("TrimmedDataAccessException", "ResourceNotFoundException", "ValidationException"):
                raise RangeGone(f"{shard_id} from {first}: {code}") from None
            raise
        found: list[dict[str, Any]] = []
        empty = 0
        while iterator and empty < EMPTY_READS:
            answer = self.client.get_records(ShardIterator=iterator, Limit=1000)
            records = answer.get("Records", [])
            within = [r for r in records if int(r["dynamodb"]["SequenceNumber"]) <= int(last)]
            found += within
            if len(within) < len(records) or (found and found[-1]["dynamodb"]["SequenceNumber"] == last):
                break  # the range's last record, or one past it: the range is read
            # An open shard always hands a next iterator; a few empty answers in a row are its end
            # as it stands (GetRecords may answer empty before records that exist).
            empty = 0 if records else empty + 1
            iterator = answer.get("NextShardIterator")
        if not found or found[0]["dynamodb"]["SequenceNumber"] != first:
            raise RangeGone(f"{shard_id} from {first}: not in the stream")
        if found[-1]["dynamodb"]["SequenceNumber"] != last:
            raise RangeIncomplete(
                f"{shard_id} from {first}: read up to {found[-1]['dynamodb']['SequenceNumber']}, not {last}"
            )
        return found
