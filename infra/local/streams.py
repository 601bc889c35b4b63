"""Lambda's DynamoDB stream event source mappings, locally: the decision log's stream read from moto
and handed to the template's own handlers (functions.log_stream.app.handler, publishing, and
functions.log_count.app.handler, counting), each mapping with its own checkpoints, as Lambda would.

moto keeps a table's stream (describe_stream, get_shard_iterator, get_records) but invokes nothing
without Docker, so this is the one poller every local run uses: the local stack's thread, the
tests' `drain()` (tests/conftest.py) and the bench. Per shard, in order:

- a batch is up to the mapping's BatchSize records after the shard's checkpoint, turned into the
  event Lambda sends (eventID, eventName, eventVersion "1.1", eventSource "aws:dynamodb",
  awsRegion, eventSourceARN, dynamodb{ApproximateCreationDateTime, Keys, NewImage, OldImage,
  SequenceNumber, SizeBytes, StreamViewType});
- an answer with no batchItemFailures moves the checkpoint past the batch; a reported failure
  moves it to just before the reported record (the batch is retried from there, with
  ReportBatchItemFailures); a raising handler leaves it where it was (the same batch again: the
  template does not bisect);
- after MaximumRetryAttempts retries of one batch, its description goes to the mapping's
  on-failure queue (as Lambda's DDBStreamBatchInfo) and the shard moves on past it.

botocore sends calls carrying a StreamArn to an account-specific endpoint
(<account>.streams-ddb.<region>.amazonaws.com) that moto does not route; the streams client is made
with account_id_endpoint_mode "disabled" (and the local endpoint, from AWS_ENDPOINT_URL, in
server mode).
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra import template
from infra.lambda_runtime import LambdaContext
from shared.adapters.stream_records import lambda_json

Handler = Callable[[dict[str, Any], Any], Any]
REGION = "us-east-1"


@dataclass(frozen=True)
class StreamSource:
    """One DynamoDB event of the template: the table whose stream it reads, and how."""

    table: str  # logical id
    function: str  # logical id
    handler: str  # module.function
    timeout: float
    batch_size: int
    batching_window: float  # MaximumBatchingWindowInSeconds (locally a drain hands what is there)
    retries: int  # MaximumRetryAttempts (-1: until the records expire)
    on_failure: str | None  # logical id of the on-failure queue

    def load(self) -> Handler:
        module, name = self.handler.rsplit(".", 1)
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def stream_sources() -> list[StreamSource]:
    """Every DynamoDB stream event source of the template."""
    raw = template.raw()
    default_timeout = raw.get("Globals", {}).get("Function", {}).get("Timeout", 3)
    found = []
    for name, resource in raw["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        for event in props.get("Events", {}).values():
            if event["Type"] != "DynamoDB":
                continue
            spec = event["Properties"]
            stream = spec["Stream"]["Fn::GetAtt"]
            table = stream[0] if isinstance(stream, list) else stream.split(".")[0]
            destination = spec.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            queue = destination["Fn::GetAtt"] if isinstance(destination, dict) else None
            found.append(
                StreamSource(
                    table=table,
                    function=name,
                    handler=props["Handler"],
                    timeout=float(props.get("Timeout", default_timeout)),
                    batch_size=int(spec.get("BatchSize", 100)),
                    batching_window=float(_value(raw, spec.get("MaximumBatchingWindowInSeconds", 0))),
                    retries=int(spec.get("MaximumRetryAttempts", -1)),
                    on_failure=(queue[0] if isinstance(queue, list) else queue.split(".")[0]) if queue else None,
                )
            )
    return found


def _value(raw: dict[str, Any], node: Any) -> Any:
    """A property as a deploy with the template's defaults sets it: a `Ref` to a parameter is its
    Default (PublishingWindowSeconds sets the publishing window)."""
    if isinstance(node, dict) and set(node) == {"Ref"}:
        return raw["Parameters"][node["Ref"]]["Default"]
    return node


def streams_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))


def lambda_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A GetRecords record as Lambda hands it to the function (times in epoch seconds, binary
    values base64 as in Lambda's JSON)."""
    change = record["dynamodb"]
    created = change.get("ApproximateCreationDateTime")
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": created.timestamp() if isinstance(created, datetime) else created,
        "Keys": lambda_json(change.get("Keys", {})),
        "SequenceNumber": change["SequenceNumber"],
        "SizeBytes": change.get("SizeBytes", 0),
        "StreamViewType": change.get("StreamViewType", "NEW_AND_OLD_IMAGES"),
    }
    for image in ("NewImage", "OldImage"):
        if image in change:
            dynamodb[image] = lambda_json(change[image])
    return {
        "eventID": record.get("eventID", ""),
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", region),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }


@dataclass
class StreamPoller:
    """Lambda's event source mapping for one table's stream: one checkpoint per shard."""

    source: StreamSource
    stream_arn: str
    dead_letter_url: str | None = None
    region: str = REGION
    client: Any = None
    handler: Handler | None = None
    # shard id -> (iterator type, sequence number): where the next batch starts
    checkpoints: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # shard id -> (the record its batch restarts at, failed tries of that batch)
    attempts: dict[str, tuple[str, int]] = field(default_factory=dict)
    # The records of the next batch (None: the mapping's BatchSize). The bench sizes batches as a
    # shard of a many-shard stream would see them (bench/shards.py); moto's stream has one shard.
    batch_limit: Callable[[], int] | None = None
    batch_taken: Callable[[int], None] | None = None  # told the size of each batch handed
    function_arn: str | None = None  # the function's ARN as the stack names it (what a parked batch names)
    batches: int = 0
    records: int = 0
    failed_batches: int = 0
    parked: int = 0
    last_error: str | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def drain(self, give_up_after_retries: bool = False, max_batches: int = 100_000) -> list[dict[str, Any]]:
        """Hands the handler every record past each shard's checkpoint, batch by batch, in order;
        returns each answer. A batch that fails stops its shard for this pass (it is retried from
        the checkpoint on the next one), unless `give_up_after_retries` and it has failed its
        retries already: then it is described to the on-failure queue and skipped, as Lambda does."""
        with self._lock:
            client = self._client()
            handler = self.handler or self.source.load()
            answers: list[dict[str, Any]] = []
            shards = client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
            for shard in shards:
                shard_id = shard["ShardId"]
                while len(answers) < max_batches:
                    kind, sequence = self.checkpoints.get(shard_id, ("TRIM_HORIZON", None))
                    where = {"SequenceNumber": sequence} if sequence is not None else {}
                    iterator = client.get_shard_iterator(
                        StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=kind, **where
                    )["ShardIterator"]
                    limit = self.batch_limit() if self.batch_limit else self.source.batch_size
                    found = client.get_records(ShardIterator=iterator, Limit=limit)["Records"]
                    if not found:
                        break
                    if self.batch_taken:
                        self.batch_taken(len(found))
                    answer, failed_at = self._invoke(handler, found)
                    answers.append(answer)
                    if failed_at is None:
                        self.checkpoints[shard_id] = ("AFTER_SEQUENCE_NUMBER", found[-1]["dynamodb"]["SequenceNumber"])
                        self.attempts.pop(shard_id, None)
                        continue
                    self.failed_batches += 1
                    self.checkpoints[shard_id] = ("AT_SEQUENCE_NUMBER", failed_at)
                    at, tries = self.attempts.get(shard_id, (failed_at, 0))
                    tries = tries + 1 if at == failed_at else 1  # a batch that moved on is a new batch
                    self.attempts[shard_id] = (failed_at, tries)
                    retries = self.source.retries
                    if give_up_after_retries and retries >= 0 and tries > retries:
                        self._park(
                            shard_id, [r for r in found if int(r["dynamodb"]["SequenceNumber"]) >= int(failed_at)]
                        )
                        self.checkpoints[shard_id] = ("AFTER_SEQUENCE_NUMBER", found[-1]["dynamodb"]["SequenceNumber"])
                        self.attempts.pop(shard_id, None)
                        continue
                    break
            return answers

    def caught_up(self) -> bool:
        """True when no shard holds a record past its checkpoint."""
        with self._lock:
            client = self._client()
            for shard in client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]:
                kind, sequence = self.checkpoints.get(shard["ShardId"], ("TRIM_HORIZON", None))
                where = {"SequenceNumber": sequence} if sequence is not None else {}
                iterator = client.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType=kind, **where
                )["ShardIterator"]
                if client.get_records(ShardIterator=iterator, Limit=1)["Records"]:
                    return False
            return True

    def _client(self) -> Any:
        if self.client is None:
            self.client = streams_client()
        return self.client

    def _invoke(self, handler: Handler, found: list[dict[str, Any]]) -> tuple[dict[str, Any], str | None]:
        """One invocation; the answer, and the sequence number to retry from (None: all done)."""
        event = {"Records": [lambda_record(r, self.stream_arn, self.region) for r in found]}
        self.batches += 1
        self.records += len(found)
        try:
            answer = handler(event, LambdaContext(self.source.function, self.source.timeout)) or {}
        except Exception as error:  # a raising handler: the whole batch again, from its first record
            self.last_error = f"{type(error).__name__}: {error}"
            return {"error": self.last_error}, found[0]["dynamodb"]["SequenceNumber"]
        failures = [f.get("itemIdentifier") for f in answer.get("batchItemFailures") or []]
        if not failures:
            return answer, None
        sequences = {r["dynamodb"]["SequenceNumber"] for r in found}
        if any(not f or f not in sequences for f in failures):
            return answer, found[0]["dynamodb"]["SequenceNumber"]  # Lambda: a bad identifier fails it all
        return answer, min(failures, key=int)

    def _park(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        """What Lambda sends to the on-failure destination: a description of the batch, not its records."""
        self.parked += 1
        if not self.dead_letter_url or not records:
            return
        import boto3

        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        message = {
            "requestContext": {
                "functionArn": self.function_arn
                or f"arn:aws:lambda:{self.region}:123456789012:function:{self.source.function}",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": self.source.retries + 1,
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        boto3.client("sqs").send_message(QueueUrl=self.dead_letter_url, MessageBody=json.dumps(message))


@dataclass
class LogStreams:
    """Lambda's event source mappings of the decision log's stream, one poller per reading
    function (publishing, counting: template.yaml), each with its own checkpoints as in Lambda.
    A pass drains them in the template's order: every record is published, then counted."""

    pollers: list[StreamPoller]

    def drain(self, give_up_after_retries: bool = False, max_batches: int = 100_000) -> list[dict[str, Any]]:
        answers: list[dict[str, Any]] = []
        for poller in self.pollers:
            answers += poller.drain(give_up_after_retries, max_batches)
        return answers

    def caught_up(self) -> bool:
        return all(poller.caught_up() for poller in self.pollers)

    def poller(self, function: str) -> StreamPoller:
        (found,) = [p for p in self.pollers if p.source.function == function]
        return found

    @property
    def failed_batches(self) -> int:
        return sum(p.failed_batches for p in self.pollers)

    @property
    def last_error(self) -> str | None:
        return next((p.last_error for p in self.pollers if p.last_error), None)

    @last_error.setter
    def last_error(self, error: str | None) -> None:
        for poller in self.pollers:
            poller.last_error = error

    def checkpoints(self) -> dict[str, tuple[str, str | None]]:
        """Every poller's checkpoints, keyed "<function>/<shard id>" (what a snapshot keeps)."""
        return {f"{p.source.function}/{shard}": at for p in self.pollers for shard, at in p.checkpoints.items()}

    def restore(self, saved: dict[str, tuple[str, str | None]]) -> None:
        """Checkpoints from `checkpoints()`; a key without a function (a snapshot from before the
        stream had two readers, whose one function published and counted) is every poller's."""
        for key, at in saved.items():
            function, _, shard = key.rpartition("/")
            for poller in self.pollers:
                if not function or poller.source.function == function:
                    poller.checkpoints[shard] = at


def log_stream(resources: Any) -> LogStreams:
    """The pollers of the decision log's stream for a provisioned stack (made on first use and
    kept with the stack, so their checkpoints carry from one drain to the next)."""
    streams: LogStreams | None = resources.runtime.get("log-stream")
    if streams is None:
        streams = LogStreams(
            [
                StreamPoller(
                    source,
                    resources.stream_arns[source.table],
                    dead_letter_url=resources.urls.get(source.on_failure) if source.on_failure else None,
                    region=resources.region,
                    function_arn=resources.get_att(source.function, "Arn"),
                )
                for source in stream_sources()
                if source.table == "DecisionLogTable"
            ]
        )
        resources.runtime["log-stream"] = streams
    return streams


def drain(resources: Any) -> list[dict[str, Any]]:
    """One pass over the decision log's stream (tests and the bench): every record the stream
    holds past its checkpoints is published, then counted, unless a batch fails; then that
    reader stops at that batch, which the next pass retries. Returns each batch's answer."""
    return log_stream(resources).drain()


class StreamThread(threading.Thread):
    """The local stack's event source mapping: drains the stream continuously, retrying a failed
    batch after a pause, parking it after the mapping's retries."""

    def __init__(self, poller: StreamPoller | LogStreams, every: float = 0.2, retry_after: float = 1.0) -> None:
        super().__init__(name="stream-DecisionLogTable", daemon=True)
        self.poller = poller
        self.every = every
        self.retry_after = retry_after
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            pause = self.every
            try:
                before = self.poller.failed_batches
                self.poller.drain(give_up_after_retries=True)
                if self.poller.failed_batches > before:
                    pause = self.retry_after
            except Exception as error:  # the emulator going away while stopping, mostly
                self.poller.last_error = f"{type(error).__name__}: {error}"
                pause = 0.5
            self.stopping.wait(pause)
