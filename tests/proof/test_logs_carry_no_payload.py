"""What the functions log: ids, actions, reasons, counts; never a value of the detail itself
(attributes, segment, brand, sentiment, time zone, closed_at), nor a malformed value."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from infra.lambda_runtime import LambdaContext, api_gateway_event
from shared import wiring
from shared.adapters.clock import FixedClock
from tests.conftest import NOW, detail, drain, log_items, put_events

SERVICE_LOGGER = "followup-governor"  # POWERTOOLS_SERVICE_NAME: every function's Logger and its children


def realistic(prefix: str, count: int = 30) -> list[dict[str, Any]]:
    """Events whose every non-id value is distinctive, so a leak into the logs is unmistakable."""
    zones = ["Pacific/Chatham", "Asia/Kathmandu", "America/St_Johns"]
    return [
        detail(
            event_id=f"{prefix}-evt-{i}",
            interaction_id=f"{prefix}-int-{i}",
            customer_id=f"{prefix}-cust-{i}",
            channel=["phone", "chat", "email"][i % 3],
            outcome=["resolved", "unresolved", "escalated"][i % 3],
            closed_at=(NOW - timedelta(minutes=40, seconds=i, microseconds=271828)).isoformat(),
            sentiment=round(-0.918273 + i * 0.0137, 6),
            segment=f"segzq{prefix}{i}",
            brand=f"brandzq{prefix}{i}",
            customer_timezone=zones[i % 3],
            handle_seconds=7000 + i,
            attributes={"ticket_note": f"attrvalzq{prefix}{i}", "agent": f"agentzq{prefix}{i}", "nested": {"k": i}},
        )
        for i in range(count)
    ]


def payload_values(events: list[dict[str, Any]]) -> set[str]:
    """Every value of the details that is not an id, as the text a log line would carry."""
    found = set()
    for event in events:
        for key in ("segment", "brand", "customer_timezone", "closed_at"):
            found.add(event[key])
        found.add(repr(event["sentiment"]))
        found.update(str(v) for v in event["attributes"].values() if isinstance(v, str))
    return found


MALFORMED = detail(
    event_id="bad-evt-1",
    interaction_id="bad-int-1",
    customer_id="bad-cust-1",
    channel="carrier-pigeon-canary",
    segment="segzqmalformed",
    attributes={"secret": "attrvalzqmalformed"},
)
MALFORMED_VALUES = {"carrier-pigeon-canary", "segzqmalformed", "attrvalzqmalformed"}


@pytest.fixture(autouse=True)
def environment(aws: Any) -> None:
    for function in ("IngestFunction", "DecideApiFunction"):
        os.environ.update(aws.environment(function))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Everything the functions write: the Powertools log handlers' stream is pointed at a buffer
    (they hold the stdout of import time), and stdout/stderr (metrics are printed) via capsys."""
    import functions.decide.app
    import functions.decide_api.app
    import functions.ingest.app  # noqa: F401  (their Loggers install the service handler)

    buffer = io.StringIO()
    handlers = [h for h in logging.getLogger(SERVICE_LOGGER).handlers if isinstance(h, logging.StreamHandler)]
    assert handlers
    previous = [h.stream for h in handlers]
    for handler in handlers:
        handler.stream = buffer  # not setStream: it flushes the old stream, which may be closed

    def read() -> str:
        out, err = capsys.readouterr()
        return buffer.getvalue() + out + err

    try:
        yield read
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            handler.stream = sys.stdout if getattr(stream, "closed", False) else stream


def post(module_path: str, path: str, body: Any) -> tuple[int, Any]:
    module = __import__(module_path, fromlist=["handler"])
    answer = module.handler(api_gateway_event("POST", path, body=json.dumps(body)), LambdaContext("api"))
    return answer["statusCode"], json.loads(answer["body"])


def assert_no_payload(output: str, forbidden: set[str]) -> None:
    leaked = sorted(value for value in forbidden if value in output)
    assert leaked == [], f"log output carries detail values: {leaked}"


def test_the_queue_path_logs_ids_but_no_detail_values(aws: Any, logs: Any) -> None:
    # Given 30 realistic events and one malformed one on the bus
    events = realistic("q")
    put_events(aws, [*events[:15], MALFORMED, *events[15:]])
    # When the decide function consumes the queue
    responses = drain(aws)
    # Then every event was decided or parked (so the logs describe real work)
    assert all(r == {"batchItemFailures": []} for r in responses)
    assert len(log_items(aws)) == 30
    output = logs()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert sum(1 for line in lines if line.get("message") == "decided") == 30
    assert any(line.get("message") == "invalid event parked" for line in lines)
    # And the ids are there, but no value of any detail, nor the malformed value
    assert "q-evt-7" in output
    assert_no_payload(output, payload_values(events) | MALFORMED_VALUES)


def test_post_decide_logs_ids_but_no_detail_values(aws: Any, logs: Any) -> None:
    # Given 30 realistic events and one malformed one, asked for synchronously
    events = realistic("d")
    answers = [post("functions.decide_api.app", "/decide", event) for event in [*events, MALFORMED]]
    # Then the valid ones were decided and the malformed one refused
    assert [status for status, _ in answers] == [200] * 30 + [400]
    output = logs()
    assert "d-evt-7" in output
    # And the logs carry none of their values
    assert_no_payload(output, payload_values(events) | MALFORMED_VALUES)


def test_post_events_logs_no_detail_values(aws: Any, logs: Any) -> None:
    # Given 30 realistic events and one malformed one, posted for ingest in one request
    events = realistic("e")
    status, answer = post("functions.ingest.app", "/events", {"events": [*events[:10], MALFORMED, *events[10:]]})
    assert status == 202
    assert (answer["accepted"], [f["index"] for f in answer["failed"]]) == (30, [10])
    # When the decide function consumes what was put on the bus
    drain(aws)
    assert len(log_items(aws)) == 30
    # Then neither function logged any detail value
    output = logs()
    assert '"message":"ingested"' in output.replace(" ", "")
    assert_no_payload(output, payload_values(events) | MALFORMED_VALUES)
