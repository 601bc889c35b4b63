"""Hostile InteractionClosed details through every door: the queue (EventBridge envelope in SQS),
POST /decide and POST /events. Nothing may crash, every refusal names a field, and nothing that a
hostile sender controls is echoed back or decided."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.lambda_runtime import LambdaContext, api_gateway_event, receive_batch, sqs_event
from shared import wiring
from shared.adapters.clock import FixedClock
from tests.conftest import NOW, detail, log_items

VALID = detail(event_id="evt-hostile", interaction_id="int-hostile", customer_id="cust-hostile")


def with_raw(field: str, raw: str) -> str:
    """The valid detail as JSON text with one field's value replaced by raw JSON text."""
    return json.dumps({**VALID, field: "__RAW__"}).replace('"__RAW__"', raw)


def without(field: str) -> str:
    return json.dumps({k: v for k, v in VALID.items() if k != field})


def dumped(**overrides: Any) -> str:
    return json.dumps({**VALID, **overrides})


@dataclass(frozen=True)
class Case:
    name: str
    text: str  # the detail as raw JSON text (may hold NaN, duplicate keys, deep nesting)
    field: str  # the field the API answers must name
    secret: str | None = None  # a distinctive offending value that must never be echoed
    queue_field: str | None = None  # the field the dead-letter attributes must name, if not detail.<field>

    @property
    def parked_field(self) -> str:
        return self.queue_field or f"detail.{self.field}"


DEEP = '{"a":' * 5000 + "1" + "}" * 5000

CORPUS = [
    # wrong types
    Case("event_id-number", with_raw("event_id", "12345"), "event_id"),
    Case("customer_id-list", with_raw("customer_id", '["cust-1"]'), "customer_id"),
    Case("channel-number", with_raw("channel", "1"), "channel"),
    Case("closed_at-epoch", with_raw("closed_at", "1795000000"), "closed_at"),
    Case("outcome-bool", with_raw("outcome", "true"), "outcome"),
    Case("outcome-null", with_raw("outcome", "null"), "outcome"),
    Case("sentiment-string", dumped(sentiment="0.5"), "sentiment"),
    Case("sentiment-out-of-range", dumped(sentiment=2), "sentiment"),
    Case("handle_seconds-fraction", dumped(handle_seconds=1.5), "handle_seconds"),
    Case("contact_attempts-string", dumped(contact_attempts="3"), "contact_attempts"),
    Case("contact_attempts-zero", dumped(contact_attempts=0), "contact_attempts"),
    Case("reopen_count-negative", dumped(reopen_count=-1), "reopen_count"),
    Case("segment-empty", dumped(segment=""), "segment"),
    Case("brand-too-long", dumped(brand="b" * 65), "brand"),
    Case("attributes-list", dumped(attributes=[1, 2]), "attributes"),
    Case("attributes-string", dumped(attributes="attr-as-string-qzx"), "attributes", "attr-as-string-qzx"),
    Case("timezone-number", dumped(customer_timezone=5), "customer_timezone"),
    # missing fields
    *(Case(f"missing-{f}", without(f), f) for f in ("event_id", "interaction_id", "customer_id", "channel")),
    *(Case(f"missing-{f}", without(f), f) for f in ("closed_at", "outcome")),
    # unknown enums
    Case("channel-unknown", dumped(channel="fax-machine-qzx"), "channel", "fax-machine-qzx"),
    Case("channel-upper-case", dumped(channel="PHONE"), "channel"),
    Case("outcome-unknown", dumped(outcome="maybe-later-qzx"), "outcome", "maybe-later-qzx"),
    # bad time zones
    Case("timezone-mars", dumped(customer_timezone="Mars/Olympus_Qzx"), "customer_timezone", "Mars/Olympus_Qzx"),
    Case("timezone-localtime", dumped(customer_timezone="localtime"), "customer_timezone"),
    Case("timezone-offset", dumped(customer_timezone="UTC+3"), "customer_timezone"),
    Case("timezone-path", dumped(customer_timezone="../../etc/passwd"), "customer_timezone", "../../etc/passwd"),
    Case("timezone-nul", dumped(customer_timezone="Europe/Paris\x00"), "customer_timezone"),
    # bad timestamps
    Case("closed_at-no-offset", dumped(closed_at="2026-11-23T10:00:00"), "closed_at"),
    Case("closed_at-impossible-date", dumped(closed_at="2026-13-45T10:00:00Z"), "closed_at"),
    Case("closed_at-words", dumped(closed_at="yesterday-qzx"), "closed_at", "yesterday-qzx"),
    Case("closed_at-tomorrow", dumped(closed_at=(NOW + timedelta(days=1)).isoformat()), "closed_at"),
    Case("closed_at-year-9999", dumped(closed_at="9999-12-31T23:59:59Z"), "closed_at"),
    Case("closed_at-year-9999-west", dumped(closed_at="9999-12-31T23:59:59-01:00"), "closed_at"),
    # huge values
    Case("attributes-1MB", dumped(attributes={"blob": "Q" * 1_000_000}), "attributes", "Q" * 1000),
    Case("event_id-1MB", dumped(event_id="E" * 1_000_000), "event_id", "E" * 1000),
    Case("customer_id-129", dumped(customer_id="c" * 129), "customer_id", "c" * 129),
    # unicode tricks in ids
    Case("event_id-zero-width", dumped(event_id="evt\u200b-qzx"), "event_id", "evt\u200b-qzx"),
    Case("interaction_id-bidi", dumped(interaction_id="int-\u202eqzx"), "interaction_id", "int-\u202eqzx"),
    Case("customer_id-homoglyph", dumped(customer_id="сust-qzx"), "customer_id", "сust-qzx"),  # noqa: RUF001
    Case("customer_id-nul", dumped(customer_id="cust\x00qzx"), "customer_id", "cust\x00qzx"),
    Case("customer_id-fullwidth-digit", dumped(customer_id="cust-\uff11"), "customer_id", "cust-\uff11"),
    Case("event_id-trailing-newline", dumped(event_id="evt-qzx\n"), "event_id"),
    Case("segment-bidi", dumped(segment="vip\u202eqzx"), "segment", "vip\u202eqzx"),
    # personal data where an opaque id belongs
    Case("customer_id-email", dumped(customer_id="jane.qzx@example.com"), "customer_id", "jane.qzx@example.com"),
    Case("customer_id-phone-intl", dumped(customer_id="+44 20 7946 0123"), "customer_id", "+44 20 7946 0123"),
    Case("customer_id-phone-us", dumped(customer_id="(555) 123-4567"), "customer_id", "(555) 123-4567"),
    Case("customer_id-phone-dashes", dumped(customer_id="555-123-4567"), "customer_id", "555-123-4567"),
    # NaN and Infinity as raw JSON text
    Case("sentiment-nan", with_raw("sentiment", "NaN"), "sentiment"),
    Case("sentiment-minus-infinity", with_raw("sentiment", "-Infinity"), "sentiment"),
    Case("handle_seconds-infinity", with_raw("handle_seconds", "Infinity"), "handle_seconds"),
    Case("contact_attempts-nan", with_raw("contact_attempts", "NaN"), "contact_attempts"),
    # duplicate keys: the last one is the bad one
    Case("duplicate-channel", json.dumps(VALID)[:-1] + ', "channel": "fax-dup-qzx"}', "channel", "fax-dup-qzx"),
    Case(
        "duplicate-customer_id",
        json.dumps(VALID)[:-1] + ', "customer_id": "dup.qzx@example.com"}',
        "customer_id",
        "dup.qzx@example.com",
    ),
    # unknown fields
    Case("extra-field", dumped(surprise="surprise-qzx"), "surprise", "surprise-qzx"),
]

# Unknown fields whose names are themselves hostile: the queue and /events replace the name.
HOSTILE_KEYS = [
    Case("extra-bidi-key", dumped(**{"key\u202eqzx": 1}), "<unknown field>", "key\u202eqzx"),
    Case("extra-long-key", dumped(**{"K" * 300: 1}), "<unknown field>", "K" * 300),
]

# Detail that is not an object: the API answers name the body, the dead-letter queue names the detail.
NOT_OBJECTS = [
    Case(f"detail-{name}", text, "body", queue_field="detail")
    for name, text in (("list", "[]"), ("string", '"detail-string-qzx"'), ("number", "7"), ("null", "null"))
]

# Raw JSON text nested 5000 deep inside attributes.
DEEP_ATTRIBUTES = Case("attributes-5000-deep", with_raw("attributes", DEEP), "attributes", queue_field="body")

# SQS bodies that are not an EventBridge event at all.
NOT_EVENTS = ["not json qzx", "[]", "7", '"a string"', "null", "{", '{"detail-type": "InteractionClosed"}']


def envelope(detail_text: str) -> str:
    """An EventBridge event as the rule delivers it to SQS, around a detail given as raw JSON text."""
    head = {
        "version": "0",
        "id": "0b1c2d3e-hostile",
        "detail-type": "InteractionClosed",
        "source": "helpdesk.test",
        "account": "123456789012",
        "time": "2026-11-23T11:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": "__DETAIL__",
    }
    return json.dumps(head).replace('"__DETAIL__"', detail_text)


def handle_queue(stack: Any, bodies: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Sends the bodies to the decide queue, hands them to the handler ten at a time, and
    acknowledges like the event source mapping; returns every response and every parked message."""
    from functions.decide.app import handler
    from infra.lambda_runtime import acknowledge

    sqs = boto3.client("sqs")
    url, arn = stack.urls["DecideQueue"], stack.arns["DecideQueue"]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    responses = []
    while messages := receive_batch(sqs, url):
        response = handler(sqs_event(messages, arn), LambdaContext("decide"))
        acknowledge(sqs, url, messages, response)
        responses.append(response)
    parked = []
    while batch := receive_batch(sqs, stack.urls["DecideDeadLetterQueue"]):
        parked.extend(batch)
        for message in batch:
            sqs.delete_message(QueueUrl=stack.urls["DecideDeadLetterQueue"], ReceiptHandle=message["ReceiptHandle"])
    return responses, parked


def attributes_of(message: dict[str, Any]) -> dict[str, str]:
    return {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}


@pytest.fixture(autouse=True)
def environment(aws: Any) -> None:
    for function in ("IngestFunction", "DecideApiFunction"):
        os.environ.update(aws.environment(function))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))


def post(module_path: str, path: str, text: str) -> tuple[int, str]:
    module = __import__(module_path, fromlist=["handler"])
    answer = module.handler(api_gateway_event("POST", path, body=text), LambdaContext("api"))
    return answer["statusCode"], answer["body"]


def assert_clean(body: str, case: Case) -> None:
    assert "Traceback" not in body, case.name
    if case.secret:
        assert case.secret not in body, case.name
        assert json.dumps(case.secret)[1:-1] not in body, case.name  # nor its JSON-escaped spelling


# (a) the queue path


def test_every_hostile_detail_on_the_queue_is_parked_by_field_and_never_decided(aws: Any) -> None:
    # Given every hostile detail wrapped in an EventBridge envelope, plus SQS bodies that are no event at all
    cases = [*CORPUS, *HOSTILE_KEYS, *NOT_OBJECTS, DEEP_ATTRIBUTES]
    bodies = [envelope(c.text) for c in cases] + NOT_EVENTS
    expected = [c.parked_field for c in cases] + ["body"] * (len(NOT_EVENTS) - 1) + ["detail"]
    # When the decide function consumes them
    responses, parked = handle_queue(aws, bodies)
    # Then no record is reported failed: none of them can ever succeed, so none is retried
    assert responses
    assert all(r == {"batchItemFailures": []} for r in responses)
    # And every one is in the dead-letter queue, untouched, naming the field that was wrong
    assert len(parked) == len(bodies)
    by_body = {m["Body"]: attributes_of(m) for m in parked}
    assert set(by_body) == set(bodies)
    for body, field in zip(bodies, expected, strict=True):
        attributes = by_body[body]
        assert attributes["governor_error"] == "INVALID_EVENT"
        assert attributes["governor_fields"], body[:200]
        assert field in attributes["governor_fields"].split(","), (body[:200], attributes)
    # And the reasons echo no distinctive value the sender sent
    for case in cases:
        if case.secret:
            attributes = by_body[envelope(case.text)]
            assert case.secret not in attributes["governor_message"]
            assert case.secret not in attributes["governor_fields"]
    # And nothing was decided
    assert log_items(aws) == []


def test_hostile_events_put_on_the_bus_are_parked_too(aws: Any) -> None:
    # Given hostile details that are valid JSON, put on the bus by an upstream system
    from tests.conftest import drain, put_events

    cases = [c for c in CORPUS if "NaN" not in c.text and "Infinity" not in c.text and len(c.text) < 200_000]
    put_events(aws, [json.loads(c.text) for c in cases])
    # When the decide function drains the queue
    responses = drain(aws)
    # Then nothing failed, all of them are parked with a field, and nothing is decided
    assert all(r == {"batchItemFailures": []} for r in responses)
    parked = []
    sqs = boto3.client("sqs")
    while batch := receive_batch(sqs, aws.urls["DecideDeadLetterQueue"]):
        parked.extend(batch)
        for message in batch:
            sqs.delete_message(QueueUrl=aws.urls["DecideDeadLetterQueue"], ReceiptHandle=message["ReceiptHandle"])
    assert len(parked) == len(cases)
    fields = sorted(attributes_of(m)["governor_fields"] for m in parked)
    assert fields == sorted(c.parked_field for c in cases)
    assert log_items(aws) == []


# (b) POST /events and (c) POST /decide


def test_post_events_refuses_each_hostile_item_by_index_naming_the_field(aws: Any) -> None:
    for case in [*CORPUS, *HOSTILE_KEYS]:
        # When a hostile detail is posted for ingest
        status, body = post("functions.ingest.app", "/events", case.text)
        # Then it is accepted as a request and the item refused by index, naming the field
        assert status == 202, (case.name, body[:300])
        answer = json.loads(body)
        assert answer["accepted"] == 0, case.name
        [failure] = answer["failed"]
        assert (failure["index"], failure["code"]) == (0, "INVALID_EVENT"), case.name
        assert failure["message"], case.name
        assert case.field in failure["fields"], (case.name, failure)
        # And nothing the sender controls is echoed back
        assert_clean(body, case)
    # And nothing reached the bus, so nothing is decided
    assert log_items(aws) == []


def test_post_events_refuses_a_body_that_is_not_an_object_with_400(aws: Any) -> None:
    for case in NOT_OBJECTS:
        status, body = post("functions.ingest.app", "/events", case.text)
        assert status == 400, (case.name, body[:300])
        answer = json.loads(body)
        assert answer["code"] and answer["message"], case.name
        assert "body" in [f["field"] for f in answer["fields"]], case.name
        assert_clean(body, case)


def test_post_decide_refuses_each_hostile_detail_with_400_naming_the_field(aws: Any) -> None:
    for case in [*CORPUS, *NOT_OBJECTS]:
        # When a hostile detail is posted for a synchronous decision
        status, body = post("functions.decide_api.app", "/decide", case.text)
        # Then it is refused with 400, a code, a message and the field
        assert status == 400, (case.name, body[:300])
        answer = json.loads(body)
        assert answer["code"] == "INVALID_INPUT", case.name
        assert answer["message"], case.name
        assert case.field in [f["field"] for f in answer["fields"]], (case.name, answer["fields"])
        # And nothing the sender controls is echoed
        assert_clean(body, case)
    # And nothing is decided
    assert log_items(aws) == []


def test_ancient_but_representable_timestamps_are_decided_stale_not_crashed(aws: Any) -> None:
    # Given interactions said to have closed in year 1, at UTC and west of it
    for event_id, closed_at in (("evt-y1-utc", "0001-01-01T00:00:00Z"), ("evt-y1-west", "0001-01-01T00:00:00-01:00")):
        # When they are posted for a decision
        status, body = post("functions.decide_api.app", "/decide", dumped(event_id=event_id, closed_at=closed_at))
        # Then each gets a recorded "none" for staleness
        assert status == 200, body[:300]
        answer = json.loads(body)
        assert (answer["action"], answer["reasons"]) == ("none", ["STALE_EVENT"])


# Hypothesis: arbitrary JSON-ish values merged into a valid detail

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
FIELD_NAMES = st.sampled_from(sorted({*VALID, "sentiment", "attributes", "segment", "brand", "customer_timezone"}))
OVERRIDES = st.dictionaries(FIELD_NAMES | st.text(max_size=12), JSONISH, max_size=4)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(overrides=OVERRIDES)
def test_post_decide_never_answers_5xx_for_merged_junk(aws: Any, overrides: dict[str, Any]) -> None:
    # Given a valid detail with arbitrary JSON-ish values merged over it
    text = json.dumps({**VALID, **overrides})
    # When it is posted
    status, body = post("functions.decide_api.app", "/decide", text)
    # Then the answer is a decision or a refusal naming a field, never a server error (409: the
    # examples share one event_id, and a valid one with other content reuses it)
    assert status in (200, 400, 409), body[:300]
    assert "Traceback" not in body
    if status in (400, 409):
        answer = json.loads(body)
        assert answer["code"] and answer["message"] and answer["fields"]


@PROPERTY
@given(overrides=OVERRIDES)
def test_the_queue_handler_never_raises_or_retries_for_merged_junk(aws: Any, overrides: dict[str, Any]) -> None:
    # Given a valid detail with arbitrary JSON-ish values merged over it, in an EventBridge envelope
    body = envelope(json.dumps({**VALID, **overrides}))
    # When the decide function handles it
    responses, parked = handle_queue(aws, [body])
    # Then it is decided or parked naming a field; it is never failed for a retry
    assert responses == [{"batchItemFailures": []}]
    assert all(attributes_of(m)["governor_fields"] for m in parked)


# Regressions: each of these crashed or leaked before its fix.


def test_raw_json_nested_5000_deep_gets_a_400_from_both_apis(aws: Any) -> None:
    from tests.integration.test_api_functions import decide, ingest

    text = json.dumps({**detail(), "attributes": "X"}).replace('"X"', '{"a":' * 5000 + "1" + "}" * 5000)
    _environment(aws)
    for call in (decide, ingest):
        status, body = call(text)
        assert status == 400
        assert [f["field"] for f in body["fields"]] == ["body"]


def test_a_close_time_with_no_utc_instant_is_refused_not_crashed_on(aws: Any) -> None:
    from tests.integration.test_api_functions import decide, ingest

    _environment(aws)
    bad = detail(closed_at="0001-01-01T00:00:00+01:00")
    status, body = decide(bad)
    assert (status, [f["field"] for f in body["fields"]]) == (400, ["closed_at"])
    status, body = ingest(bad)
    assert (status, body["accepted"], body["failed"][0]["fields"]) == (202, 0, ["closed_at"])


def test_decide_does_not_echo_an_unknown_field_name_the_sender_controls(aws: Any) -> None:
    from tests.integration.test_api_functions import decide

    _environment(aws)
    status, body = decide({**detail(), "key\u202eqzx": 1, "k" * 300: 2})
    assert status == 400
    assert {f["field"] for f in body["fields"]} == {"<unknown field>"}
    assert "\u202e" not in json.dumps(body, ensure_ascii=False) and "k" * 300 not in json.dumps(body)


def test_nan_or_infinity_inside_attributes_is_refused(aws: Any) -> None:
    from tests.integration.test_api_functions import decide, ingest

    _environment(aws)
    for literal in ("NaN", "Infinity", "-Infinity"):
        text = json.dumps({**detail(), "attributes": {"x": "X"}}).replace('"X"', literal)
        status, body = decide(text)
        assert (status, [f["field"] for f in body["fields"]]) == (400, ["attributes"])
        status, body = ingest(text)
        assert body["accepted"] == 0


def _environment(aws: Any) -> None:
    for function in ("IngestFunction", "DecideApiFunction"):
        os.environ.update(aws.environment(function))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))
