"""A separate OS process of deciders: N threads, each Lambda's SQS poller in miniature, calling
the real decide handler until the queue stays empty. Started by test_concurrency_stress.py."""

from __future__ import annotations

import sys
import threading
import time

import boto3

from functions.decide.app import handler
from infra.lambda_runtime import LambdaContext, acknowledge, receive_batch, sqs_event


def decide_until_empty(queue_url: str, queue_arn: str, idle_rounds: int = 3) -> None:
    sqs = boto3.client("sqs")
    idle = 0
    while idle < idle_rounds:
        messages = receive_batch(sqs, queue_url, 10)
        if not messages:
            idle += 1
            time.sleep(0.2)
            continue
        idle = 0
        response = handler(sqs_event(messages, queue_arn), LambdaContext("decide"))
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
