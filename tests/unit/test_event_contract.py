"""The InteractionClosed contract: the published JSON Schema, the pydantic model, the EventBridge
envelope and the queue parser agree, and every refusal names the field without echoing the value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from functions.decide.batch import InvalidEvent, parse_body
from infra import sample_events, schema
from shared.adapters.clock import EventClock, FixedClock
from shared.adapters.envelope import InteractionClosedEnvelope
from shared.domain.events import MAX_ATTRIBUTES_BYTES, InteractionClosed
from tests.conftest import NOW, detail, put_events

ROOT = Path(__file__).resolve().parents[2]
SECRET = "zq7731-do-not-echo"  # a value no message may repeat


def published_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema.SCHEMA_FILE.read_text())
    return loaded


VALIDATOR = Draft202012Validator(published_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def model_errors(event: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        InteractionClosed.model_validate(event)
    except ValidationError as error:
        return [dict(e) for e in error.errors(include_url=False)]
    return []


def schema_errors(event: dict[str, Any]) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(event)]


def fields_the_schema_refuses(event: dict[str, Any]) -> set[str]:
    """The top-level fields the schema's errors are about, missing and unknown ones included."""
    fields: set[str] = set()
    for error in VALIDATOR.iter_errors(event):
        if error.path:
            fields.add(str(error.path[0]))
        elif error.validator == "required":
            fields.update(name for name in error.validator_value if name not in event)
        elif error.validator == "additionalProperties":
            fields.update(name for name in event if name not in VALIDATOR.schema["properties"])
        else:
            fields.add("<detail>")
    return fields


def over_the_wire(event: dict[str, Any]) -> dict[str, Any]:
    """What a consumer sees after the event went through JSON."""
    loaded: dict[str, Any] = json.loads(json.dumps(event))
    return loaded


def attributes_of(size: int, char: str = "x") -> dict[str, Any]:
    """Attributes exactly `size` bytes long, serialized as the model measures them."""

    def measure(value: dict[str, Any]) -> int:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())

    room = size - measure({"note": ""})
    width = len(char.encode())
    value = {"note": char * (room // width) + "x" * (room % width)}
    assert measure(value) == size
    return value


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in detail().items() if k != field}


def with_nulls() -> dict[str, Any]:
    optional = ["handle_seconds", "contact_attempts", "reopen_count", "sentiment"]
    return {**detail(), **dict.fromkeys([*optional, "customer_timezone", "segment", "brand", "attributes"])}


EVERY_FIELD = detail(
    event_id="evt-2026-11-23-0001",
    interaction_id="int-7f3a9c",
    customer_id="cust-000123",
    channel="chat",
    closed_at="2026-11-23T10:15:00.250+01:00",
    outcome="unresolved",
    handle_seconds=642,
    contact_attempts=3,
    reopen_count=1,
    sentiment=-0.62,
    customer_timezone="Europe/Berlin",
    segment="vip",
    brand="acme-mobile",
    attributes={"queue": "billing", "agent_tier": 2, "tags": ["refund", "late"], "escalation": None},
)

VALID = [
    pytest.param(detail(), id="minimal"),
    pytest.param(EVERY_FIELD, id="every-optional-field"),
    pytest.param(with_nulls(), id="optional-fields-null"),
    pytest.param(detail(closed_at="2026-11-23T15:45:00+05:30"), id="closed_at-offset-+05:30"),
    pytest.param(detail(closed_at="2026-11-23T10:15:00Z"), id="closed_at-Z"),
    pytest.param(detail(closed_at="2026-11-23t10:15:00z"), id="closed_at-lowercase-t-z"),
    pytest.param(detail(closed_at="2026-11-23T02:15:00-08:00"), id="closed_at-negative-offset"),
    pytest.param(detail(closed_at="2026-11-23T10:15:00.123456Z"), id="closed_at-microseconds"),
    pytest.param(detail(sentiment=-1), id="sentiment--1"),
    pytest.param(detail(sentiment=1), id="sentiment-1"),
    pytest.param(detail(sentiment=-0.5), id="sentiment--0.5"),
    pytest.param(detail(handle_seconds=0), id="handle_seconds-0"),
    pytest.param(detail(handle_seconds=7 * 24 * 3600), id="handle_seconds-a-week"),
    pytest.param(detail(contact_attempts=1), id="contact_attempts-1"),
    pytest.param(detail(contact_attempts=1000), id="contact_attempts-1000"),
    pytest.param(detail(reopen_count=0), id="reopen_count-0"),
    pytest.param(detail(event_id="e", interaction_id="i", customer_id="c"), id="ids-1-char"),
    pytest.param(
        detail(event_id="e" * 128, interaction_id="i" * 128, customer_id="c" * 128),
        id="ids-128-chars",
    ),
    pytest.param(detail(customer_id="C0._:/#=+-x"), id="id-every-allowed-punctuation"),
    pytest.param(detail(customer_id="1234567890"), id="customer_id-numeric-opaque"),
    pytest.param(detail(segment="s" * 64, brand="b" * 64), id="labels-64-chars"),
    pytest.param(detail(customer_timezone="Asia/Kolkata"), id="timezone-half-hour-zone"),
    pytest.param(detail(customer_timezone="UTC"), id="timezone-UTC"),
    pytest.param(detail(attributes=attributes_of(MAX_ATTRIBUTES_BYTES - 1)), id="attributes-just-under-limit"),
    pytest.param(detail(attributes=attributes_of(MAX_ATTRIBUTES_BYTES)), id="attributes-at-limit"),
    pytest.param(detail(attributes=attributes_of(MAX_ATTRIBUTES_BYTES, "é")), id="attributes-at-limit-multibyte"),
    pytest.param(detail(attributes={}), id="attributes-empty"),
    *(pytest.param(detail(channel=c), id=f"channel-{c}") for c in ["phone", "chat", "email", "web", "social"]),
    pytest.param(detail(channel="in_person"), id="channel-in_person"),
    *(pytest.param(detail(outcome=o), id=f"outcome-{o}") for o in ["resolved", "unresolved", "escalated"]),
    pytest.param(detail(outcome="abandoned"), id="outcome-abandoned"),
]


def bad(field: str, value: Any, name: str) -> Any:
    """A detail that is valid but for one field."""
    return pytest.param(field, {**detail(), field: value}, id=name)


REQUIRED = ["event_id", "interaction_id", "customer_id", "channel", "closed_at", "outcome"]

INVALID = [
    *(pytest.param(field, without(field), id=f"missing-{field}") for field in REQUIRED),
    bad("nps", 9, "unknown-field"),
    bad("channel", "sms", "channel-unknown"),
    bad("channel", "Phone", "channel-wrong-case"),
    bad("outcome", "closed", "outcome-unknown"),
    bad("handle_seconds", "3", "handle_seconds-string"),
    bad("handle_seconds", 3.5, "handle_seconds-fraction"),
    bad("handle_seconds", True, "handle_seconds-bool"),
    bad("handle_seconds", -1, "handle_seconds-negative"),
    bad("handle_seconds", 7 * 24 * 3600 + 1, "handle_seconds-over-a-week"),
    bad("sentiment", True, "sentiment-bool"),
    bad("sentiment", "0.5", "sentiment-string"),
    bad("sentiment", -1.01, "sentiment-below--1"),
    bad("sentiment", 1.01, "sentiment-above-1"),
    bad("contact_attempts", 0, "contact_attempts-0"),
    bad("contact_attempts", 1001, "contact_attempts-1001"),
    bad("reopen_count", -1, "reopen_count-negative"),
    bad("event_id", 123, "event_id-number"),
    bad("event_id", "", "event_id-empty"),
    bad("event_id", "e" * 129, "event_id-129-chars"),
    bad("interaction_id", "i" * 129, "interaction_id-129-chars"),
    bad("customer_id", "c" * 129, "customer_id-129-chars"),
    bad("customer_id", "cust 123", "customer_id-space"),
    bad("customer_id", "\u0441ust-123", "customer_id-cyrillic-look-alike"),
    bad("customer_id", "cust\uff0d123", "customer_id-fullwidth-hyphen"),
    bad("customer_id", "cust-123\u200b", "customer_id-zero-width-space"),
    bad("customer_id", "cust-\u202e321", "customer_id-bidi-override"),
    bad("event_id", "evt\x00-1", "event_id-nul"),
    bad("event_id", "evt\t1", "event_id-tab"),
    bad("interaction_id", "int\x1b[31m-1", "interaction_id-escape-sequence"),
    bad("event_id", "-evt-1", "event_id-leading-punctuation"),
    bad("segment", "", "segment-empty"),
    bad("brand", "b" * 65, "brand-65-chars"),
    bad("segment", "small business", "segment-space"),
    bad("customer_timezone", "A/" + "b" * 63, "timezone-65-chars"),
    bad("customer_timezone", 1, "timezone-number"),
    bad("closed_at", "2026-11-23T10:15:00", "closed_at-no-offset"),
    bad("closed_at", "2026-11-23", "closed_at-date-only"),
    bad("closed_at", "yesterday", "closed_at-not-a-date"),
    bad("closed_at", "23/11/2026 10:15 +00:00", "closed_at-local-format"),
    bad("closed_at", "2026-02-30T10:15:00Z", "closed_at-no-such-day"),
    bad("closed_at", "2026-11-23T24:15:00Z", "closed_at-hour-24"),
    bad("closed_at", "2026-11-23T10:15:00+24:00", "closed_at-offset-24h"),
    bad("closed_at", 1795428900, "closed_at-epoch-number"),
    bad("closed_at", None, "closed_at-null"),
    bad("attributes", ["queue", "billing"], "attributes-list"),
    bad("attributes", '{"queue": "billing"}', "attributes-string"),
]


def test_committed_schema_is_what_the_model_generates() -> None:
    # Given the schema file upstream teams validate against
    committed = schema.SCHEMA_FILE.read_text()
    # When the schema is generated from the model
    generated = schema.render()
    # Then they are the same, byte for byte
    assert committed == generated, (
        "infra/interaction-closed.schema.json is out of date with shared/events.py; run `make schema` and commit it"
    )


def test_schema_command_prints_the_schema_and_nothing_else() -> None:
    # Given the repository on PYTHONPATH, as `make schema` runs it
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # When `python -m infra.schema` runs
    run = subprocess.run(
        [sys.executable, "-m", "infra.schema"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    # Then stdout is exactly the schema, a valid 2020-12 JSON Schema
    assert run.stdout == schema.render()
    Draft202012Validator.check_schema(json.loads(run.stdout))


def test_schema_validator_really_checks_date_time_formats() -> None:
    # Given the validator the corpus tests use
    # When a non-date goes into a date-time field
    verdict = VALIDATOR.is_valid({**detail(), "closed_at": "not a date"})
    # Then it is refused: format checking is on, so the date cases below prove something
    assert "date-time" in VALIDATOR.format_checker.checkers
    assert not verdict


@pytest.mark.parametrize("event", VALID)
def test_valid_details_pass_both_the_model_and_the_schema(event: dict[str, Any]) -> None:
    # Given a detail the contract allows, as it arrives after JSON
    wire = over_the_wire(event)
    # When the model and the published schema check it
    from_model, from_schema = model_errors(wire), schema_errors(wire)
    # Then both accept it
    assert from_model == []
    assert from_schema == []


@pytest.mark.parametrize(("field", "event"), INVALID)
def test_invalid_details_fail_both_the_model_and_the_schema_at_that_field(field: str, event: dict[str, Any]) -> None:
    # Given a detail breaking, in one field, a rule the schema can express, as it arrives after JSON
    wire = over_the_wire(event)
    # When the model and the published schema check it
    model_fields = {str(error["loc"][0]) for error in model_errors(wire)}
    schema_fields = fields_the_schema_refuses(wire)
    # Then both refuse it, and for that field alone
    assert model_fields == {field}
    assert schema_fields == {field}


MODEL_ONLY = [
    pytest.param("customer_id", "jane.doe@example.com", "e-mail address; send the opaque customer id", id="email"),
    pytest.param("customer_id", "+44 20 7946 0000", "phone number; send the opaque customer id", id="phone-intl"),
    pytest.param("customer_id", "(555) 123-4567", "phone number; send the opaque customer id", id="phone-us"),
    pytest.param("customer_id", "555-123-4567", "phone number; send the opaque customer id", id="phone-dashes"),
    pytest.param("customer_id", "555.123.4567", "phone number; send the opaque customer id", id="phone-dots"),
    pytest.param("customer_timezone", "Mars/Olympus_Mons", "not an IANA time zone name", id="timezone-unknown"),
    pytest.param("customer_timezone", "Europe/Londres", "not an IANA time zone name", id="timezone-misspelt"),
    pytest.param("customer_timezone", "CET+1", "not an IANA time zone name", id="timezone-made-up-offset"),
    pytest.param(
        "attributes", attributes_of(MAX_ATTRIBUTES_BYTES + 1), "is 4097 bytes serialized; at most 4096", id="big"
    ),
    pytest.param(
        "attributes", attributes_of(MAX_ATTRIBUTES_BYTES + 2, "é"), "is 4098 bytes serialized; at most 4096", id="wide"
    ),
    pytest.param("attributes", {"tree": nested(2000)}, "nested more than 32 levels deep", id="deeply-nested"),
]


@pytest.mark.parametrize(("field", "value", "advice"), MODEL_ONLY)
def test_the_model_refuses_what_only_it_can_check_naming_the_field_and_the_fix(
    field: str, value: Any, advice: str
) -> None:
    # Given a detail whose only problem is a rule the model enforces beyond (or besides) the schema
    event = {**detail(), field: value}
    # When the model checks it
    errors = model_errors(event)
    # Then it is refused once, at that field, with a message that says what to send instead
    assert [e["loc"] for e in errors] == [(field,)]
    assert advice in errors[0]["msg"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("customer_id", "555-123-4567"),
        ("customer_timezone", "Mars/Olympus_Mons"),
        ("attributes", attributes_of(MAX_ATTRIBUTES_BYTES + 1)),
        ("attributes", {"tree": nested(2000)}),
    ],
    ids=["phone-dashes", "timezone-unknown", "attributes-too-big", "attributes-deeply-nested"],
)
def test_the_schema_cannot_express_the_model_only_rules(field: str, value: Any) -> None:
    # Given a detail breaking only a model-only rule
    event = {**detail(), field: value}
    # When the published schema checks it
    errors = schema_errors(event)
    # Then the schema lets it through: only the decider's model catches it
    assert errors == []


def test_a_purely_numeric_opaque_customer_id_is_not_taken_for_a_phone_number() -> None:
    # Given a customer id that is only digits, as some CRMs issue them
    event = detail(customer_id="1234567890")
    # When the model checks it
    parsed = InteractionClosed.model_validate(event)
    # Then it is accepted as it is
    assert parsed.customer_id == "1234567890"


def eventbridge_body(**overrides: Any) -> dict[str, Any]:
    """An event as AWS EventBridge delivers it to an SQS target."""
    body: dict[str, Any] = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "InteractionClosed",
        "source": "helpdesk.zendesk",
        "account": "111122223333",
        "time": "2026-11-23T11:00:02Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": detail(),
    }
    body.update(overrides)
    return body


def test_an_event_delivered_by_motos_eventbridge_without_account_parses(aws: Any) -> None:
    # Given the template's bus, rule and decide queue on moto
    queue = aws.urls["DecideQueue"]
    # When an upstream system puts an InteractionClosed event and the queue receives it
    put_events(aws, [detail(event_id="evt-moto")])
    messages = boto3.client("sqs").receive_message(QueueUrl=queue, WaitTimeSeconds=0)["Messages"]
    body = messages[0]["Body"]
    parsed = parse_body(body, FixedClock(NOW))
    # Then moto left out `account`, and the envelope still parses with the detail intact
    assert "account" not in json.loads(body)
    assert isinstance(parsed, InteractionClosedEnvelope)
    assert parsed.account is None
    assert parsed.detail.event_id == "evt-moto"


def test_an_event_shaped_as_aws_delivers_it_with_account_parses() -> None:
    # Given an EventBridge event as AWS delivers it, `account` included
    body = eventbridge_body()
    # When the envelope model reads it
    envelope = InteractionClosedEnvelope.model_validate(body)
    # Then the account and the detail are there
    assert envelope.account == "111122223333"
    assert envelope.detail_type == "InteractionClosed"
    assert envelope.detail == InteractionClosed.model_validate(detail())


@pytest.mark.parametrize("detail_type", ["InteractionOpened", "interactionclosed", ""])
def test_an_event_of_another_detail_type_is_refused_naming_detail_type(detail_type: str) -> None:
    # Given an event whose detail-type is not InteractionClosed
    body = eventbridge_body(**{"detail-type": detail_type})
    # When the queue parser reads it
    parsed = parse_body(json.dumps(body), FixedClock(NOW))
    # Then it is refused at `detail-type` alone
    assert isinstance(parsed, InvalidEvent)
    assert parsed.fields == ["detail-type"]


def test_problems_are_reported_by_field_path_without_the_offending_values() -> None:
    # Given an event with several bad fields, each carrying a distinctive value
    bad = detail(
        customer_id=f"{SECRET}@example.com",
        closed_at=f"2026-11-23 {SECRET}",
        channel=SECRET,
        handle_seconds=SECRET,
        customer_timezone=f"Europe/{SECRET}",
        favourite_colour=SECRET,
    )
    body = json.dumps(eventbridge_body(detail=bad))
    # When the queue parser reads it
    parsed = parse_body(body, FixedClock(NOW))
    # Then every problem is named by its path, and no message repeats a value that was sent
    assert isinstance(parsed, InvalidEvent)
    assert parsed.fields == [
        "detail.channel",
        "detail.closed_at",
        "detail.customer_id",
        "detail.customer_timezone",
        "detail.favourite_colour",
        "detail.handle_seconds",
    ]
    assert all(problem["message"] for problem in parsed.problems)
    assert SECRET not in json.dumps(parsed.problems)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("", "is not valid JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps([eventbridge_body()]), "must be a JSON object"),
        ('"InteractionClosed"', "must be a JSON object"),
        ("null", "must be a JSON object"),
    ],
    ids=["broken-json", "empty", "empty-array", "array-of-events", "string", "null"],
)
def test_a_body_that_is_not_a_json_object_is_refused_as_body(body: str, message: str) -> None:
    # Given a queue message body that is not a JSON object
    # When the queue parser reads it
    parsed = parse_body(body, FixedClock(NOW))
    # Then the one problem is the body itself
    assert isinstance(parsed, InvalidEvent)
    assert parsed.fields == ["body"]
    assert message in parsed.problems[0]["message"]


def future_event(ahead: timedelta, now: datetime = NOW) -> str:
    return json.dumps(eventbridge_body(detail=detail(closed_at=(now + ahead).isoformat())))


def test_an_event_closed_more_than_15_minutes_after_the_clock_is_refused_at_closed_at() -> None:
    # Given the decider's clock at NOW and an event stamped 15 minutes and 1 second later
    body = future_event(timedelta(minutes=15, seconds=1))
    # When the queue parser reads it with that clock
    parsed = parse_body(body, FixedClock(NOW))
    # Then it is refused at detail.closed_at, with advice and without the timestamp
    assert isinstance(parsed, InvalidEvent)
    assert parsed.problems == [
        {"field": "detail.closed_at", "message": "is in the future; send the time the interaction actually closed"}
    ]


def test_an_event_closed_up_to_15_minutes_after_the_clock_is_tolerated_as_skew() -> None:
    # Given the decider's clock at NOW and an event stamped exactly 15 minutes later
    body = future_event(timedelta(minutes=15))
    # When the queue parser reads it with that clock
    parsed = parse_body(body, FixedClock(NOW))
    # Then it is accepted: upstream clocks may run a little ahead
    assert isinstance(parsed, InteractionClosedEnvelope)


def test_the_event_clock_refuses_events_from_the_real_future_as_every_path_does() -> None:
    # Given a replay that decides each event as of its own closed_at, and an event a day ahead of
    # the real present (recorded traffic is in the past: this one is a mistake)
    body = future_event(timedelta(days=1), now=datetime.now(UTC))
    # When the queue parser reads it with the event clock
    parsed = parse_body(body, EventClock())
    # Then it is refused naming closed_at, as POST /events and POST /decide refuse it (one time rule)
    assert isinstance(parsed, InvalidEvent)
    assert parsed.fields == ["detail.closed_at"]


SAMPLE_LINES = sample_events.SAMPLE_FILE.read_text().splitlines()


def test_the_sample_file_is_what_the_generator_produces() -> None:
    # Given the committed sample file
    committed = sample_events.SAMPLE_FILE.read_text()
    # When the seeded generator runs again
    generated = sample_events.render()
    # Then the file is exactly its output
    assert committed == generated, (
        "infra/sample-events.ndjson is out of date; run `python -m infra.sample_events > infra/sample-events.ndjson`"
    )


@pytest.mark.parametrize("line", SAMPLE_LINES, ids=[f"line-{n}" for n in range(1, len(SAMPLE_LINES) + 1)])
def test_every_sample_line_is_a_valid_interaction_closed(line: str) -> None:
    # Given one line of the sample file
    event = json.loads(line)
    # When the model and the published schema check it
    from_model, from_schema = model_errors(event), schema_errors(event)
    # Then both accept it
    assert from_model == []
    assert from_schema == []


def test_the_sample_exercises_idempotency_repeat_contacters_and_quiet_hours() -> None:
    # Given the sample events
    events = [InteractionClosed.model_validate_json(line) for line in SAMPLE_LINES]
    # When they are counted
    event_ids = [e.event_id for e in events]
    events_per_interaction: dict[str, set[str]] = {}
    for e in events:
        events_per_interaction.setdefault(e.interaction_id, set()).add(e.event_id)
    per_customer: dict[str, set[str]] = {}
    for e in events:
        per_customer.setdefault(e.customer_id, set()).add(e.interaction_id)
    night = [
        e for e in events if e.closed_at.astimezone(ZoneInfo(e.customer_timezone or "UTC")).hour not in range(9, 20)
    ]
    # Then there are repeated deliveries, re-closed interactions, heavy repeat contacters,
    # out-of-hours closures, and everything in time order
    assert 380 <= len(events) <= 420
    assert len(event_ids) - len(set(event_ids)) >= 3
    assert sum(len(ids) > 1 for ids in events_per_interaction.values()) >= 3
    assert 100 <= len(per_customer) <= 130
    assert sum(len(interactions) >= 10 for interactions in per_customer.values()) >= 3
    assert len(night) >= 20
    assert [e.closed_at for e in events] == sorted(e.closed_at for e in events)


# Regressions found while writing this contract: each would let a malformed event through, or echo it.


@pytest.mark.parametrize("field", ["event_id", "interaction_id", "customer_id"])
def test_an_id_with_a_trailing_newline_is_refused_by_the_model_and_the_schema(field: str) -> None:
    # Given an id that differs from a valid one only by a trailing newline
    event = detail(**{field: "cust-1\n"})
    # Then both refuse it (a regex `$` would have matched before the newline)
    assert [e["loc"] for e in model_errors(event)] == [(field,)]
    assert field in fields_the_schema_refuses(event)


@pytest.mark.parametrize(
    "value",
    [
        "\uff12\uff10\uff12\uff16-11-23T10:15:00Z",
        "2026-11-23T10:15:00+25:00",
        "2026-11-24T08:00:00Z\n",
        "2026-11-23 10:15:00Z",
    ],
    ids=["full-width-digits", "offset-out-of-range", "trailing-newline", "space-for-T"],
)
def test_a_malformed_closed_at_is_refused_by_both_with_a_message_that_does_not_echo_it(value: str) -> None:
    # Given a closed_at that only looks like RFC 3339
    event = detail(closed_at=value)
    # Then the model refuses it with the fixed advice, never repeating the value, and so does the schema
    errors = model_errors(event)
    assert [e["loc"] for e in errors] == [("closed_at",)]
    assert "RFC 3339" in errors[0]["msg"]
    assert value.strip() not in errors[0]["msg"]
    assert "closed_at" in fields_the_schema_refuses(event)


def test_an_integral_float_count_is_an_integer_for_both_the_model_and_the_schema() -> None:
    # Given counts sent as 3.0, which JSON Schema calls integers
    event = detail(handle_seconds=120.0, contact_attempts=3.0, reopen_count=0.0)
    # Then the schema and the model both accept them, as integers
    assert schema_errors(event) == []
    parsed = InteractionClosed.model_validate(event)
    assert (parsed.handle_seconds, parsed.contact_attempts, parsed.reopen_count) == (120, 3, 0)
    assert isinstance(parsed.contact_attempts, int)


@pytest.mark.parametrize("customer_id", ["12345-678", "2026.11.0042", "acct-555-0100"])
def test_opaque_ids_with_separators_are_not_taken_for_phone_numbers(customer_id: str) -> None:
    assert InteractionClosed.model_validate(detail(customer_id=customer_id)).customer_id == customer_id


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "Mars/Olympus_Mons"])
def test_only_the_pinned_iana_names_are_time_zones_whatever_the_host_has(zone: str) -> None:
    assert [e["loc"] for e in model_errors(detail(customer_timezone=zone))] == [("customer_timezone",)]


def test_a_hostile_unknown_field_name_is_neither_echoed_nor_turned_into_a_metric() -> None:
    from functions.decide.batch import metric_field

    # Given an event with an unknown field whose name is long and personal-looking
    name = "jane.doe@example.com-" + "x" * 300
    body = json.dumps(eventbridge_body(detail={**detail(), name: 1}))
    # When the queue parser reads it
    parsed = parse_body(body, FixedClock(NOW))
    # Then the field is reported without its name, and its metric name comes from a fixed set
    assert isinstance(parsed, InvalidEvent)
    assert parsed.fields == ["detail.<unknown field>"]
    assert metric_field(parsed.fields[0]) == "unknown_field"
    assert metric_field("detail.closed_at") == "detail.closed_at"
