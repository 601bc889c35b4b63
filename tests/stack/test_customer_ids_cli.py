"""Ids with / # : = + . _ - through the local stack over HTTP and through every `governor` command
that names one: the gateway turns each request into the event API Gateway REST would send."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from cli import app
from infra.local.stack import LocalGovernor
from tests.conftest import detail

pytestmark = pytest.mark.server

IDS = ["qa/c2", "qa#c3", "qa:c4", "qa=c5", "qa+c6", "qa.c7", "qa_c8", "qa-c9", "a/b#c:d=e+f.g_h-i"]


def governor(capsys: pytest.CaptureFixture[str], stack: LocalGovernor, *args: str) -> tuple[int, str]:
    """`governor ARGS --url <stack>` in process: its exit code, and what it wrote (data, then messages)."""
    result = CliRunner().invoke(app.governor, [*args, "--url", stack.url])
    return result.exit_code, result.stdout + result.stderr


def said(out: str, prefix: str) -> str:
    """The command's line that starts with `prefix` (function log lines share stdout here)."""
    lines = [line for line in out.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, out
    return lines[0]


def http(stack: LocalGovernor, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{stack.url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def decided(stack: LocalGovernor) -> LocalGovernor:
    """One solved interaction per id, through POST /events and the queue, decided."""
    closed = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    details = [
        detail(event_id=f"ids-{n}", interaction_id=f"ids-i{n}", customer_id=c, closed_at=closed)
        for n, c in enumerate(IDS)
    ]
    status, answer = http(stack, "POST", "/events", {"events": details})
    assert (status, answer["accepted"]) == (202, len(IDS)), answer
    assert stack.wait_drained(timeout=120)
    return stack


def test_the_issue_example_percent_encoded_over_http_is_served(decided: LocalGovernor) -> None:
    # When an admin PUTs preferences of qa/c2 with the id percent-encoded, as curl sends it
    status, body = http(decided, "PUT", "/customers/qa%2Fc2/preferences", {"callback": True, "source": "call 3"})
    # Then it is that customer's, and the GET with : = + encoded finds theirs too
    assert (status, body["customer_id"]) == (200, "qa/c2"), body
    for encoded, customer_id in [
        ("qa%3Ac4", "qa:c4"),
        ("qa%3Dc5", "qa=c5"),
        ("qa%2Bc6", "qa+c6"),
        ("qa%23c3", "qa#c3"),
    ]:
        status, body = http(decided, "GET", f"/customers/{encoded}/contact-state")
        assert (status, body["customer_id"], len(body["recent_follow_ups"])) == (200, customer_id, 1), body
    # And : = + sent unencoded (legal in a path segment) mean the same customer
    status, body = http(decided, "GET", "/customers/qa:c4/preferences")
    assert (status, body["customer_id"]) == (200, "qa:c4")
    status, body = http(decided, "GET", "/customers/qa+c6/preferences")
    assert (status, body["customer_id"]) == (200, "qa+c6")


@pytest.mark.parametrize("customer_id", IDS)
def test_every_customer_command_works_for_every_allowed_id(
    decided: LocalGovernor, capsys: pytest.CaptureFixture[str], customer_id: str
) -> None:
    # When an admin looks the customer up
    code, out = governor(capsys, decided, "customer", customer_id)
    # Then the state shown is this customer's, with the survey just approved
    assert code == 0, out
    assert f"customer {customer_id} as of" in out and "1/1" in out
    # When the customer is opted out of surveys, then the opt-out is undone
    code, out = governor(capsys, decided, "opt-out", customer_id, "--kind", "survey", "--source", "call 9")
    assert (code, "survey (call 9)" in said(out, f"customer {customer_id} opt-outs: ")) == (0, True), out
    code, out = governor(capsys, decided, "customer", customer_id)
    assert "opted out of survey" in out
    code, out = governor(capsys, decided, "opt-out", customer_id, "--kind", "survey", "--undo")
    assert (code, "survey" in said(out, f"customer {customer_id} opt-outs: ")) == (0, False), out
    # And the customer's decisions are listed, and `why` explains the one found
    code, out = governor(capsys, decided, "decisions", "--customer", customer_id, "-o", "ndjson")
    assert code == 0, out
    found = [json.loads(line) for line in out.splitlines() if line.startswith('{"decision_id"')]
    assert [d["customer_id"] for d in found] == [customer_id]
    code, out = governor(capsys, decided, "why", found[0]["decision_id"])
    assert code == 0 and f"for customer {customer_id} " in out, out


@pytest.mark.parametrize("decision_id", ["dcn/x", "dcn#x", "dcn:x=y+z"])
def test_why_with_reserved_characters_reaches_the_route_and_says_not_found(
    stack: LocalGovernor, capsys: pytest.CaptureFixture[str], decision_id: str
) -> None:
    # When `why` is given an id no decision has, holding / # : = +
    code, out = governor(capsys, stack, "why", decision_id)
    # Then the API answers that no such decision exists (not "no route", not a cut-off id)
    assert code == 1
    assert f"404 NOT_FOUND: no decision {decision_id}" in out, out


def test_a_bad_encoded_id_is_refused_naming_customer_id(stack: LocalGovernor) -> None:
    for segment in ["qa%40x", "qa%25x", "qa%FF"]:
        status, body = http(stack, "GET", f"/customers/{segment}/preferences")
        assert status == 400, (segment, body)
        assert [f["field"] for f in body["fields"]] == ["customer_id"]
