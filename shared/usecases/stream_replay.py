"""Replaying the decision log stream's batches that Lambda gave up on.

Either reader of the stream (publishing, counting) may fail a batch past its mapping's retries (a
long EventBridge or DynamoDB outage, a bug since fixed). Lambda then describes the batch on the
log stream dead-letter queue (function, shard, first and last sequence numbers) and moves on, so
its decisions are committed but not announced, or not counted and listed on day pages. Once the
cause is fixed, an operator invokes the stream replay function: for each message, the range is
read back from the stream and handed whole to the use case of the function that gave up, then the
message is deleted.

Why a replay is safe to repeat, or to run twice at once:
- publishing is at least once anyway (consumers dedupe on decision_id and state); a replayed announcement
  may arrive after newer ones of the same decision, which carry a later state_changed_at;
- counting stays exactly once: the counting use case reports only a batch's FIRST record as
  failed, so a parked range starts at the first record of the batch its attempts tried, which is
  its receipt's key (shared.usecases.log_count). The range is handed in one call, as one batch:
  the receipt says how far any attempt counted, and the rest is counted once.
A stream keeps records 24 hours: an older range is reported gone and its message kept (nothing can
be replayed from the stream; the entries are still in the log).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from shared.adapters.aws import AWS_ERRORS
from shared.adapters.parked_batches import ParkedBatch
from shared.adapters.stream_records import RangeGone, RangeIncomplete, lambda_json
from shared.usecases.log_stream import Change

logger = Logger(child=True)


class Parked(Protocol):
    def receive(self, count: int) -> list[dict[str, Any]]: ...

    def done(self, batch: ParkedBatch) -> None: ...


class Records(Protocol):
    def read(self, stream_arn: str, shard_id: str, first: str, last: str) -> list[dict[str, Any]]: ...


class ReaderReport(Protocol):
    @property
    def retry_from(self) -> str | None: ...


Reader = Callable[[Sequence[Change]], ReaderReport]


@dataclass(frozen=True)
class Replayed:
    """What became of one parked batch: `replayed` (message deleted), or left on the queue as
    `failed` (the reader did not finish: try again later), `gone` (older than the stream's 24
    hours), `unknown_function` or `unreadable`."""

    message_id: str
    result: str
    function: str = ""
    first: str = ""
    last: str = ""
    records: int = 0
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v != ""}


def change_of(record: dict[str, Any]) -> Change:
    """A GetRecords record as the readers take it from Lambda (binary values base64)."""
    return Change.from_record({"eventName": record["eventName"], "dynamodb": lambda_json(record["dynamodb"])})


@dataclass
class StreamReplayUseCase:
    parked: Parked
    records: Records
    readers: dict[str, Reader]  # the stream readers' use cases, by function name

    def run(self, limit: int = 10) -> list[Replayed]:
        """Replays up to `limit` parked batches, oldest first as SQS hands them."""
        outcomes: list[Replayed] = []
        while len(outcomes) < limit:
            messages = self.parked.receive(limit - len(outcomes))
            if not messages:
                break
            outcomes += [self._replay(message) for message in messages]
        return outcomes

    def _replay(self, message: dict[str, Any]) -> Replayed:
        try:
            batch = ParkedBatch.from_message(message)
        except (KeyError, TypeError, ValueError) as error:
            return Replayed(message.get("MessageId", ""), "unreadable", detail=f"not a stream batch: {error!r}")

        def outcome(result: str, records: int = 0, detail: str = "") -> Replayed:
            return Replayed(batch.message_id, result, batch.function, batch.first, batch.last, records, detail)

        reader = self.readers.get(batch.function)
        if reader is None:
            return outcome("unknown_function", detail="no stream reader of that name")
        try:
            records = self.records.read(batch.stream_arn, batch.shard_id, batch.first, batch.last)
        except RangeGone as gone:
            logger.warning("parked batch gone from the stream", extra={"message_id": batch.message_id})
            return outcome("gone", detail=str(gone))
        except RangeIncomplete as short:
            # Replaying part of the range and deleting the message would lose the rest: kept.
            logger.warning("parked batch read short", extra={"message_id": batch.message_id})
            return outcome("failed", detail=str(short))
        report = reader([change_of(record) for record in records])
        if report.retry_from is not None:
            return outcome("failed", len(records), f"the reader stopped at {report.retry_from}")
        try:
            self.parked.done(batch)
        except AWS_ERRORS as error:  # replayed all the same; a repeat is harmless
            logger.warning("parked batch replayed, message kept", extra={"error": type(error).__name__})
        return outcome("replayed", len(records))
