"""The admin commands in process (Click's CliRunner): streams, ranges, paging, errors, global options."""

from __future__ import annotations

import csv
import io
import json
import shlex
import socket
from datetime import UTC, datetime, timedelta

import pytest

from cli.admin import REASONS
from infra.local.stack import LocalGovernor
from tests.cli.conftest import post, run
from tests.conftest import detail

pytestmark = pytest.mark.server

NOW = datetime.now(UTC)
# Noon ten days ago: the seven decisions minutes apart stay on one UTC day whatever the hour the suite runs.
TEN_DAYS_AGO = NOW.replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=10)
OLD = NOW - timedelta(days=35)  # beyond one request's 31 days


@pytest.fixture(scope="module")
def stack(event_stack: LocalGovernor) -> LocalGovernor:
    """Seven customers' decisions ten days ago and one 35 days ago (the event clock decides each as of
    its own time)."""
    recent = [
        detail(
            event_id=f"pg-{n}",
            interaction_id=f"pg-i{n}",
            customer_id=f"pg-c{n}",
            closed_at=(TEN_DAYS_AGO + timedelta(minutes=n)).isoformat(),
        )
        for n in range(7)
    ]
    old = detail(event_id="pg-old", interaction_id="pg-iold", customer_id="pg-cold", closed_at=OLD.isoformat())
    post(event_stack, [old, *recent])
    return event_stack


def ids(text: str) -> list[str]:
    return [json.loads(line)["event_id"] for line in text.splitlines()]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_listing_says_how_many_more_and_the_printed_command_continues(stack: LocalGovernor) -> None:
    # Given seven decisions in a range, When three are listed
    day = f"{TEN_DAYS_AGO:%Y-%m-%d}"
    first = run("--url", stack.url, "decisions", "--from", day, "--to", day, "--limit", "3", "-o", "ndjson")
    # Then stdout has the three newest, and stderr how many more there are and the exact command
    assert first.exit_code == 0, first.stderr
    assert ids(first.stdout) == ["pg-6", "pg-5", "pg-4"]
    count, command = first.stderr.strip().split(": ", 1)
    assert count == "4 more"
    assert command.startswith(f"governor decisions --from {day} --to {day}")
    assert "--page-token" in command
    # When the printed command is run
    words = shlex.split(command)
    assert words[0] == "governor"
    rest = run(*words[1:])
    # Then it lists exactly the rest, and says it is all
    assert rest.exit_code == 0, rest.stderr
    assert ids(rest.stdout) == ["pg-3", "pg-2", "pg-1", "pg-0"]
    assert rest.stderr.strip() == "4 decision(s)"
    # And --all pages through everything
    every = run("--url", stack.url, "-o", "ndjson", "decisions", "--from", day, "--to", day, "--all", "--limit", "1")
    assert ids(every.stdout) == [f"pg-{n}" for n in reversed(range(7))]


def test_ranges_longer_than_one_request_are_split_by_the_cli(stack: LocalGovernor) -> None:
    # Given decisions ten and 35 days ago, When 40 days are listed (the API serves 31 at a time)
    listed = run("decisions", "--since", "40d", "--all", "-o", "json", "--url", stack.url)
    # Then both are there, newest first
    assert listed.exit_code == 0, listed.stderr
    assert [d["event_id"] for d in json.loads(listed.stdout)] == [*(f"pg-{n}" for n in reversed(range(7))), "pg-old"]
    # And exactly 31 days is no longer refused as "31 days; at most 31"
    month = run("decisions", "--since", "31d", "--all", "-o", "ndjson", "--url", stack.url)
    assert month.exit_code == 0, month.stderr
    assert "pg-old" not in ids(month.stdout) and "pg-0" in ids(month.stdout)
    # And a human date picks a whole day
    old_day = f"{OLD:%Y-%m-%d}"
    that_day = run("decisions", "--from", old_day, "--to", old_day, "-o", "ndjson", "--url", stack.url)
    assert ids(that_day.stdout) == ["pg-old"]


def test_export_streams_across_chunks_with_one_csv_header(stack: LocalGovernor) -> None:
    # Given a range of two requests' length, When it is exported as CSV
    exported = run("export", "--since", "40d", "--format", "csv", "--url", stack.url)
    # Then stdout is one CSV: one header, every decision of both chunks, nothing else
    assert exported.exit_code == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [r["event_id"] for r in rows] == [*(f"pg-{n}" for n in reversed(range(7))), "pg-old"]
    assert exported.stdout.count("decision_id,") == 1
    # And NDJSON (-o ndjson chooses it too) carries the same decisions
    ndjson = run("-o", "ndjson", "export", "--since", "40d", "--url", stack.url)
    assert ids(ndjson.stdout) == [r["event_id"] for r in rows]


def test_global_options_work_before_and_after_the_subcommand_and_from_the_environment(stack: LocalGovernor) -> None:
    day = f"{TEN_DAYS_AGO:%Y-%m-%d}"
    # Given the same listing asked three ways
    before = run("--url", stack.url, "-o", "json", "decisions", "--from", day, "--to", day)
    after = run("decisions", "--from", day, "--to", day, "--url", stack.url, "--output", "json")
    from_env = run("decisions", "--from", day, "--to", day, "-o", "json", env={"GOVERNOR_URL": stack.url})
    # Then each answers the same data
    assert before.exit_code == after.exit_code == from_env.exit_code == 0
    assert json.loads(before.stdout) == json.loads(after.stdout) == json.loads(from_env.stdout)
    assert len(json.loads(before.stdout)) == 7
    # And an option after the subcommand wins over the one before it
    wins = run("--url", f"http://127.0.0.1:{closed_port()}", "stats", "--url", stack.url, "-o", "json")
    assert wins.exit_code == 0, wins.stderr


def test_data_goes_to_stdout_and_messages_to_stderr(stack: LocalGovernor) -> None:
    # Given a listing in a table, Then the table is on stdout and the count on stderr
    listed = run("decisions", "--since", "40d", "--url", stack.url)
    assert "pg-c0" in listed.stdout and "decision(s)" not in listed.stdout
    assert listed.stderr.strip() == "8 decision(s)"
    # Given an export that is refused, Then nothing reaches stdout (a redirected file stays clean)
    refused = run("export", "--url", stack.url, "--format", "csv")
    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert "give a range" in refused.stderr


def test_an_unknown_reason_lists_the_valid_codes_once(stack: LocalGovernor) -> None:
    refused = run("decisions", "--since", "7d", "--reason", "NOPE", "--url", stack.url)
    assert refused.exit_code == 2 and refused.stdout == ""
    assert all(refused.stderr.count(code) == 1 for code in REASONS)
    # A lower-case code is the same code
    assert run("decisions", "--since", "7d", "--reason", "survey_eligible", "--url", stack.url).exit_code == 0


def test_a_customer_the_governor_has_never_seen_is_said_to_be_so(stack: LocalGovernor) -> None:
    unknown = run("customer", "never-seen-xyz", "--url", stack.url)
    assert unknown.exit_code == 1
    assert "has never seen customer never-seen-xyz" in unknown.stderr
    known = run("customer", "pg-c0", "--url", stack.url)
    assert known.exit_code == 0, known.stderr
    assert "never seen" not in known.stderr and "customer pg-c0" in known.stdout


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["decisions"], 2, "give --customer, or a range"),
        (["decisions", "--since", "yesterdayx"], 2, "'yesterdayx' is not a time: use 7d"),
        (["decisions", "--from", "2026-13-45"], 2, "is not a time"),
        (["decisions", "--since", "7d", "--from", "3d"], 2, "give one"),
        (["decisions", "--to", "3d"], 2, "--to needs --from or --since"),
        (["stats", "--from", "yesterday", "--to", "7d"], 2, "swap them"),
        (["decisions", "--since", "7d", "--page-token", "junk"], 2, "not a page token"),
        (["why", "dcn_nosuchdecision"], 1, "404 NOT_FOUND"),
        (["opt-out", "pg-c1"], 2, "Missing option '--kind'"),
        (["local", "--sample", "/no/such/file.ndjson"], 2, "does not exist"),
        (["--url", "ftp://example.com", "stats"], 2, "not an http(s) URL"),
        (["nosuchcommand"], 2, "No such command"),
    ],
)
def test_user_errors_are_one_message_on_stderr_never_a_traceback(
    stack: LocalGovernor, args: list[str], code: int, says: str
) -> None:
    url = [] if "--url" in args else ["--url", stack.url]
    result = run(*url, *args)
    assert result.exit_code == code, result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_an_unreachable_api_names_the_url_where_it_came_from_and_how_to_point_elsewhere() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    # Given GOVERNOR_URL naming a port nothing listens on
    result = run("stats", env={"GOVERNOR_URL": url})
    # Then exit 4, and the message says which URL, from where, and what to do
    assert result.exit_code == 4
    assert f"cannot reach the governor API at {url}" in result.stderr
    assert "came from GOVERNOR_URL" in result.stderr
    assert "--url" in result.stderr and "governor local" in result.stderr
    assert "Traceback" not in result.stderr
    # And --debug (before or after the subcommand) adds the traceback
    for args in (["--debug", "stats"], ["stats", "--debug"]):
        debugged = run(*args, env={"GOVERNOR_URL": url})
        assert debugged.exit_code == 4
        assert "Traceback" in debugged.stderr and "cannot reach" in debugged.stderr


def test_a_customers_timeline_shows_each_decisions_state_now_not_as_first_logged(stack: LocalGovernor) -> None:
    import urllib.request

    # Given a survey held until its send time (pending when logged), then released when time moved on
    post(
        stack,
        [
            detail(
                event_id="tl-1",
                interaction_id="tl-i1",
                customer_id="tl-c1",
                closed_at=TEN_DAYS_AGO.isoformat(),
            )
        ],
    )
    advance = urllib.request.Request(
        f"{stack.url}/local/advance",
        data=json.dumps({"to": NOW.isoformat()}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(advance, timeout=60) as answer:
        assert answer.status == 200
    assert stack.wait_drained(timeout=60)  # the stream's logging done before stdout is captured
    listed = run("decisions", "--customer", "tl-c1", "-o", "json", "--url", stack.url)
    assert [d["state"] for d in json.loads(listed.stdout)] == ["released"]
    # When `governor customer` shows the customer
    shown = run("customer", "tl-c1", "-o", "json", "--url", stack.url)
    table = run("customer", "tl-c1", "--url", stack.url)
    # Then its timeline says released, as `decisions` does, never the logged "pending"
    assert shown.exit_code == 0, shown.stderr
    timeline = [e for e in json.loads(shown.stdout)["last_entries"] if e.get("decision_id")]
    assert [e["state"] for e in timeline] == ["released"]
    assert "released" in table.stdout and "pending " not in table.stdout.split("when (UTC)")[-1]
