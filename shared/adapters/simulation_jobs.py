"""Simulation jobs in DynamoDB (SimulationJobsTable). This module alone spells the table's keys.

One item per job (`item = "job"`): the request, its fingerprint, the plan, the status, the
progress counters, the estimate and the answer. One item per partition replayed
(`item = "partition#03"`): its counts, written once. Every change is one conditional request:

- create: PutItem if the job does not exist (a repeat finds the first one and compares);
- start: the first plan step stores the plan sized to the log and its partitions if no step began
  the job yet (a repeated step gets the first sizing);
- record a partition: one transaction - the partition item if it is not there yet, and the job's
  counters added to while the job runs - so a retried partition never counts twice;
- finish and fail: UpdateItem while the job runs, so the first end wins and a repeat changes nothing.

The plan, partition counts, estimate and answer are JSON, zlib-compressed (a partition's counts
and an answer with its samples stay far under DynamoDB's 400 KB item limit). Items expire
`KEEP` after the job was created (the table's TTL).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from shared.adapters import aws
from shared.domain.decision import format_utc

JOB = "job"
PARTITION = "partition#"
KEEP = timedelta(days=30)
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


@dataclass(frozen=True)
class Job:
    job_id: str
    status: str
    fingerprint: str
    request: dict[str, Any]
    plan: dict[str, Any]
    created_at: datetime
    created_by: str
    partitions: int
    partitions_done: int = 0
    events_replayed: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    estimate: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None


def _key(job_id: str, item: str) -> dict[str, Any]:
    return {"job_id": {"S": job_id}, "item": {"S": item}}


def partition_item(partition: int) -> str:
    return f"{PARTITION}{partition:02d}"


def _packed(value: Any) -> dict[str, Any]:
    return {"B": zlib.compress(json.dumps(value, sort_keys=True, separators=(",", ":")).encode(), 6)}


def _unpacked(attribute: dict[str, Any] | None) -> Any:
    if attribute is None:
        return None
    return json.loads(zlib.decompress(attribute["B"]))


def _time(attribute: dict[str, Any] | None) -> datetime | None:
    return datetime.fromisoformat(attribute["S"]) if attribute else None


def _expires(created_at: datetime) -> dict[str, str]:
    return {"N": str(int((created_at + KEEP).timestamp()))}


def _from_item(item: dict[str, Any]) -> Job:
    error = item.get("error")
    return Job(
        job_id=item["job_id"]["S"],
        status=item["status"]["S"],
        fingerprint=item["fingerprint"]["S"],
        request=_unpacked(item["request"]),
        plan=_unpacked(item["plan"]),
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
        created_by=item["created_by"]["S"],
        partitions=int(item["partitions"]["N"]),
        partitions_done=int(item["partitions_done"]["N"]),
        events_replayed=int(item["events_replayed"]["N"]),
        started_at=_time(item.get("started_at")),
        finished_at=_time(item.get("finished_at")),
        estimate=_unpacked(item.get("estimate")),
        result=_unpacked(item.get("result")),
        error={k: v["S"] for k, v in error["M"].items()} if error else None,
    )


def _condition_failed(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class SimulationJobs(aws.AwsPort):
    def __init__(self, table: str, client: Any = None) -> None:
        self.table = table
        super().__init__(client)

    def create(self, job: Job) -> Job | None:
        """Stores a new job; None if it was created, else the job already stored under its id."""
        item = {
            **_key(job.job_id, JOB),
            "status": {"S": job.status},
            "fingerprint": {"S": job.fingerprint},
            "request": _packed(job.request),
            "plan": _packed(job.plan),
            "created_at": {"S": format_utc(job.created_at)},
            "created_by": {"S": job.created_by},
            "partitions": {"N": str(job.partitions)},
            "partitions_done": {"N": "0"},
            "events_replayed": {"N": "0"},
            "expires_at": _expires(job.created_at),
        }
        try:
            self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(job_id)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
            old = error.response.get("Item")
            return _from_item(old) if old else self.get(job.job_id)
        return None

    def get(self, job_id: str) -> Job | None:
        item = self.client.get_item(TableName=self.table, Key=_key(job_id, JOB), ConsistentRead=True).get("Item")
        return _from_item(item) if item else None

    def mark_started(self, job_id: str, now: datetime) -> Job | None:
        """Records when the job's execution began (its first plan step); None unless it is running."""
        try:
            answer = self.client.update_item(
                TableName=self.table,
                Key=_key(job_id, JOB),
                UpdateExpression="SET started_at = if_not_exists(started_at, :now)",
                ConditionExpression="attribute_exists(job_id) AND #status = :running",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":now": {"S": format_utc(now)}, ":running": {"S": RUNNING}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _condition_failed(error):
                return None
            raise
        return _from_item(answer["Attributes"])

    def start_sized(self, job_id: str, now: datetime, plan: dict[str, Any], partitions: int) -> Job | None:
        """The job's first plan step: when its execution began and the plan sized to its log (its
        partitions with it), both only if no plan step began it before - a retried or repeated step
        keeps the first sizing and gets the job as stored. None unless the job is running."""
        try:
            answer = self.client.update_item(
                TableName=self.table,
                Key=_key(job_id, JOB),
                UpdateExpression="SET started_at = :now, #plan = :plan, #partitions = :partitions",
                ConditionExpression=(
                    "attribute_exists(job_id) AND #status = :running AND attribute_not_exists(started_at)"
                ),
                ExpressionAttributeNames={"#status": "status", "#plan": "plan", "#partitions": "partitions"},
                ExpressionAttributeValues={
                    ":now": {"S": format_utc(now)},
                    ":running": {"S": RUNNING},
                    ":plan": _packed(plan),
                    ":partitions": {"N": str(partitions)},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _condition_failed(error):
                return self.mark_started(job_id, now)  # begun already (or ended): as stored
            raise
        return _from_item(answer["Attributes"])

    def has_partition(self, job_id: str, partition: int) -> bool:
        answer = self.client.get_item(
            TableName=self.table,
            Key=_key(job_id, partition_item(partition)),
            ConsistentRead=True,
            ProjectionExpression="job_id",
        )
        return "Item" in answer

    def record_partition(  # noqa: PLR0917 - one call site, every argument named there
        self,
        job_id: str,
        partition: int,
        result: dict[str, Any],
        events: int,
        now: datetime,
        expires_from: datetime,
        estimate: dict[str, Any] | None = None,
    ) -> bool:
        """One transaction: the partition's counts, once, and the job's progress (and, from the
        sample partition, its estimate). False if the partition was recorded already or the job
        no longer runs: then nothing changed."""
        update = "ADD partitions_done :one, events_replayed :events SET updated_at = :now"
        values: dict[str, Any] = {
            ":one": {"N": "1"},
            ":events": {"N": str(events)},
            ":now": {"S": format_utc(now)},
            ":running": {"S": RUNNING},
        }
        if estimate is not None:
            update += ", estimate = :estimate"
            values[":estimate"] = _packed(estimate)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                **_key(job_id, partition_item(partition)),
                                "result": _packed(result),
                                "events": {"N": str(events)},
                                "recorded_at": {"S": format_utc(now)},
                                "expires_at": _expires(expires_from),
                            },
                            "ConditionExpression": "attribute_not_exists(job_id)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": _key(job_id, JOB),
                            "UpdateExpression": update,
                            "ConditionExpression": "#status = :running",
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": values,
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                return False
            raise
        return True

    def partition_results(self, job_id: str) -> list[dict[str, Any]]:
        """Every partition recorded for the job, in partition order."""
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "job_id = :job AND begins_with(#item, :prefix)",
            "ExpressionAttributeNames": {"#item": "item"},
            "ExpressionAttributeValues": {":job": {"S": job_id}, ":prefix": {"S": PARTITION}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**request)
            found += [_unpacked(item["result"]) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def finish(self, job_id: str, result: dict[str, Any], now: datetime) -> bool:
        """The answer, once: False if the job had already ended."""
        return self._end(
            job_id,
            SUCCEEDED,
            now,
            assignment="#result = :result",
            values={":result": _packed(result)},
            names={"#result": "result"},
        )

    def fail(self, job_id: str, error: dict[str, str], now: datetime) -> bool:
        """Failed, saying why, once: False if the job had already ended."""
        described = {"M": {k: {"S": v} for k, v in error.items()}}
        return self._end(
            job_id, FAILED, now, assignment="#error = :error", values={":error": described}, names={"#error": "error"}
        )

    def _end(
        self,
        job_id: str,
        status: str,
        now: datetime,
        *,
        assignment: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> bool:
        try:
            self.client.update_item(
                TableName=self.table,
                Key=_key(job_id, JOB),
                UpdateExpression=f"SET #status = :status, finished_at = :now, updated_at = :now, {assignment}",
                ConditionExpression="#status = :running",
                ExpressionAttributeNames={"#status": "status", **(names or {})},
                ExpressionAttributeValues={
                    ":status": {"S": status},
                    ":now": {"S": format_utc(now)},
                    ":running": {"S": RUNNING},
                    **values,
                },
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True
