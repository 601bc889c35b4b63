"""A separate OS process of deciders: N threads, each Lambda's SQS poller in miniature, calling
the real decide handler until the queue stays empty. Started by test_concurrency_stress.py."""

from __future__ import annotations

import sys
import threading
import time

import boto3

from functions.decide.app import handler
from infra.lambda_runtime import LambdaContext, acknowledge, receive_batch, sqs_event

RAISED: list[str] = []  # handler exceptions seen by this process's threads (there should be none)


def drained(sqs: object, queue_url: str) -> bool:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]  # type: ignore[attr-defined]
    return all(attributes[name] == "0" for name in names)


def decide_until_empty(queue_url: str, queue_arn: str) -> None:
    """Polls until nothing is left, visible or in flight (messages other deciders hold may fail
    and come back)."""
    sqs = boto3.client("sqs")
    while True:
        messages = receive_batch(sqs, queue_url, 10)
        if not messages:
            if drained(sqs, queue_url):
                return
            time.sleep(0.2)
            continue
        try:
            response = handler(sqs_event(messages, queue_arn), LambdaContext("decide"))
        except Exception as error:  # a raising handler fails its whole batch, as in Lambda; say so
            RAISED.append(type(error).__name__)
            print(f"handler raised {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            response = {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages]}
        acknowledge(sqs, queue_url, messages, response)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for message in messages:  # retried soon, as the local stack does
            if message["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=1
                )


def run(queue_url: str, queue_arn: str, threads: int) -> None:
    workers = [threading.Thread(target=decide_until_empty, args=(queue_url, queue_arn)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], int(sys.argv[3]))
