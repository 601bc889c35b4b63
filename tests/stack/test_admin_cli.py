"""The admin commands against the local stack: answer a complaint in a minute."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from cli import app
from infra.local.stack import LocalGovernor
from tests.cli.conftest import post
from tests.conftest import detail
from tests.zones import zone_where_it_is

pytestmark = pytest.mark.server


def governor(capsys: pytest.CaptureFixture[str], stack: LocalGovernor, *args: str) -> tuple[int, str]:
    """`governor ARGS --url <stack>` in process: its exit code, and what it wrote (data, then messages)."""
    result = CliRunner().invoke(app.governor, [*args, "--url", stack.url])
    return result.exit_code, result.stdout + result.stderr


def fresh(**overrides: Any) -> dict[str, Any]:
    return detail(closed_at=(datetime.now(UTC) - timedelta(minutes=5)).isoformat(), **overrides)


def test_an_admin_answers_a_complaint_from_the_command_line(
    stack: LocalGovernor, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a customer surveyed once (closed three hours ago: past the survey delay, so released
    # at once), then refused a second survey the same day
    # in a time zone where it is early afternoon now, so quiet hours never hold the first survey
    # (held, it would be superseded by the second interaction instead of blocking it)
    zone = zone_where_it_is(14)
    closed = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    first = detail(event_id="adm-1", interaction_id="adm-i1", customer_id="cust-cli", closed_at=closed)
    post(stack, [{**first, "customer_timezone": zone}])
    second = fresh(event_id="adm-2", interaction_id="adm-i2", customer_id="cust-cli")
    post(stack, [{**second, "customer_timezone": zone}])
    # When the admin lists the customer's decisions
    code, out = governor(capsys, stack, "decisions", "--customer", "cust-cli", "--since", "7d", "-o", "ndjson")
    assert code == 0
    # (the in-process functions' own log lines share stdout here; the command prints decision objects)
    decided = [json.loads(line) for line in out.splitlines() if line.startswith('{"decision_id"')]
    assert [(d["event_id"], d["action"]) for d in decided] == [("adm-2", "none"), ("adm-1", "survey")]
    # And asks why the second got nothing
    code, out = governor(capsys, stack, "why", decided[0]["decision_id"])
    assert code == 0
    assert "SURVEY_CAP_REACHED" in out and "1 survey in the last 30 days, cap 1" in out
    # And looks at the customer's state
    code, out = governor(capsys, stack, "customer", "cust-cli")
    assert code == 0
    assert "30 days" in out and "1/1" in out
    # When the customer asks never to be surveyed again
    code, out = governor(capsys, stack, "opt-out", "cust-cli", "--kind", "survey", "--source", "complaint 7")
    assert (code, "survey (complaint 7)" in out) == (0, True)
    code, out = governor(capsys, stack, "customer", "cust-cli")
    assert "opted out of survey" in out
    # Then the day's stats include both decisions, and the export has them as CSV
    code, out = governor(capsys, stack, "stats", "--since", "1d")
    assert code == 0 and "SURVEY_CAP_REACHED" in out
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    code, out = governor(capsys, stack, "export", "--from", today, "--to", today, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO("\n".join(row for row in out.splitlines() if not row.startswith("{")))))
    assert {"adm-1", "adm-2"} <= {r["event_id"] for r in rows}


def test_refusals_exit_non_zero_with_the_field_to_change(
    stack: LocalGovernor, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = governor(capsys, stack, "decisions", "--customer", "c-1", "--reason", "BOGUS")
    assert code == 2 and "unknown reason 'BOGUS'" in out
    # (a range longer than the API's 31 days is no refusal: the command splits it)
    code, out = governor(capsys, stack, "decisions", "--since", "90d")
    assert code == 0, out
    code, out = governor(capsys, stack, "why", "dcn_unknown")
    assert code == 1 and "404" in out
