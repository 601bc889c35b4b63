"""`make run`: the governor's main job on the embedded AWS emulator.

Starts moto in server mode on 127.0.0.1, creates every data resource of template.yaml, puts the
bundled sample events on the EventBridge bus, lets the rule deliver them to the SQS queue, feeds
the queue to the decide handler in Lambda-shaped batches (honouring partial batch failures), then
prints the decisions by action and reason and what was parked in the dead-letter queue.

Events are decided as of their own `closed_at` plus 30 s (the local-only event clock), so the
recorded traffic plays out as it did, whenever you run this.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "infra" / "sample-events.ndjson"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def moto_server(port: int) -> Iterator[str]:
    """moto in server mode; every boto3 client of this process (and any other) can share it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def point_at(endpoint: str) -> None:
    """Every boto3 client created from now on talks to the emulator, with throwaway credentials."""
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 - moto accepts any credentials
        AWS_DEFAULT_REGION=REGION,
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_METRICS_NAMESPACE="FollowUpGovernorLocal",
    )
    os.environ.pop("AWS_PROFILE", None)


def read_details(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def put_on_bus(events: Any, bus: str, details: list[dict[str, Any]], source: str = "sample.helpdesk") -> None:
    for start in range(0, len(details), 10):
        entries = [
            {"EventBusName": bus, "Source": source, "DetailType": "InteractionClosed", "Detail": json.dumps(d)}
            for d in details[start : start + 10]
        ]
        answer = events.put_events(Entries=entries)
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused {answer['FailedEntryCount']} events")


def drain_queue(stack: Any, max_rounds: int = 100_000) -> dict[str, int]:
    """Lambda's SQS event source, in one loop: receive up to 10, invoke, delete what succeeded.

    Failed records are made visible again at once (instead of after the visibility timeout), so
    a local run retries them quickly; after maxReceiveCount SQS moves them to the dead-letter queue.
    """
    import boto3

    from functions.decide.app import handler
    from infra.lambda_runtime import LambdaContext, acknowledge, receive_batch, sqs_event

    sqs = boto3.client("sqs")
    url, arn = stack.urls["DecideQueue"], stack.arns["DecideQueue"]
    counts = Counter[str]()
    for _ in range(max_rounds):
        messages = receive_batch(sqs, url)
        if not messages:
            break
        response = handler(sqs_event(messages, arn, REGION), LambdaContext("decide"))
        counts["batches"] += 1
        counts["records"] += len(messages)
        counts["acknowledged"] += acknowledge(sqs, url, messages, response)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        counts["retried"] += len(failed)
        for message in messages:
            if message["MessageId"] in failed:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return dict(counts)


def logged_decisions(stack: Any) -> list[dict[str, Any]]:
    import boto3

    from shared import decision_log

    dynamodb = boto3.client("dynamodb")
    found, start = [], None
    while True:
        page = dynamodb.scan(
            TableName=stack.names["DecisionLogTable"], **({"ExclusiveStartKey": start} if start else {})
        )
        found += [decision_log.from_item(item).model_dump(mode="json") for item in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            return found


def parked_fields(stack: Any) -> Counter[str]:
    import boto3

    sqs = boto3.client("sqs")
    fields = Counter[str]()
    seen: set[str] = set()
    while True:
        messages = sqs.receive_message(
            QueueUrl=stack.urls["DecideDeadLetterQueue"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            return fields
        for message in fresh:
            seen.add(message["MessageId"])
            attribute = message.get("MessageAttributes", {}).get("governor_fields", {})
            for name in (attribute.get("StringValue") or "unknown").split(","):
                fields[name] += 1


def summary(decisions: list[dict[str, Any]], invalid: Counter[str], sent: int, seconds: float) -> str:
    by_action = Counter(d["action"] for d in decisions)
    by_reason = Counter((d["action"], d["reasons"][0]) for d in decisions)
    total = len(decisions) or 1
    lines = [
        f"{sent} events sent, {len(decisions)} decisions logged in {seconds:.1f} s ({sent / seconds:.0f} events/s)",
        "",
        f"{'action':<10} {'deciding reason':<30} {'count':>6} {'share':>7}",
        "-" * 56,
    ]
    for (action, reason), count in sorted(by_reason.items(), key=lambda kv: (kv[0][0], -kv[1])):
        lines.append(f"{action:<10} {reason:<30} {count:>6} {count / total:>7.1%}")
    lines += ["-" * 56]
    for action in ("survey", "callback", "none"):
        lines.append(f"{action:<41} {by_action.get(action, 0):>6} {by_action.get(action, 0) / total:>7.1%}")
    lines.append(f"suppression rate: {by_action.get('none', 0) / total:.1%}")
    if invalid:
        lines += ["", "parked in the dead-letter queue (invalid field: count):"]
        lines += [f"  {name}: {count}" for name, count in invalid.most_common()]
    return "\n".join(lines)


LOG_FILE = ROOT / ".local" / "functions.log"


@contextmanager
def function_output_to(path: Path, verbose: bool) -> Iterator[Any]:
    """Sends what the functions print (Powertools' JSON logs and EMF metrics, which Lambda would
    ship to CloudWatch) to a file, and yields the console for the runner's own output."""
    console = sys.stdout
    if verbose:
        yield console
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as logs:
        sys.stdout = logs
        try:
            yield console
        finally:
            sys.stdout = console


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", type=Path, default=SAMPLE, help="NDJSON of InteractionClosed details")
    parser.add_argument("--port", type=int, default=0, help="moto port (default: a free one)")
    parser.add_argument("--clock", choices=["event", "wall"], default="event")
    parser.add_argument("--verbose", action="store_true", help="print the functions' logs and metrics here")
    args = parser.parse_args(argv)

    port = args.port or free_port()
    with moto_server(port) as endpoint, function_output_to(LOG_FILE, args.verbose) as console:
        point_at(endpoint)
        import boto3

        from infra.provision import provision
        from shared import wiring
        from shared.clock import EventClock, WallClock

        stack = provision(boto3.Session(region_name=REGION))
        os.environ.update(stack.environment("DecideFunction"))
        wiring.reset()
        wiring.use_clock(EventClock() if args.clock == "event" else WallClock())

        details = read_details(args.file)
        print(
            f"moto on {endpoint}; resources from template.yaml created; replaying {len(details)} events", file=console
        )
        if not args.verbose:
            print(f"function logs and metrics: {LOG_FILE.relative_to(ROOT)}", file=console)
        started = time.perf_counter()
        put_on_bus(boto3.client("events"), stack.names["GovernorBus"], details)
        counts = drain_queue(stack)
        seconds = time.perf_counter() - started
        print(f"queue drained: {counts.get('batches', 0)} batches, {counts.get('records', 0)} records", file=console)
        print(summary(logged_decisions(stack), parked_fields(stack), len(details), seconds), file=console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
