"""`governor replay FILE` through Click's CliRunner: refused lines by number and field (one line, one
refusal), the exit code, a missing file, and the URL from GOVERNOR_URL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.app import governor
from cli.replay import parse
from infra.local.stack import LocalGovernor
from tests.conftest import detail

pytestmark = pytest.mark.server


def fresh(**overrides: Any) -> dict[str, Any]:
    return detail(closed_at=(datetime.now(UTC) - timedelta(minutes=5)).isoformat(), **overrides)


def test_a_file_is_read_with_each_bad_line_refused_once_by_number() -> None:
    source = parse('{"a": 1}\nnot json at all\n\n[1, 2]\n{"Detail": "{\\"b\\": 2}"}\n')
    assert [r.said() for r in source.refused] == [
        "line 2: not JSON",
        "line 4: not a JSON object (an InteractionClosed detail)",
    ]
    assert (source.details, source.lines) == ([{"a": 1}, {"b": 2}], [1, 5])


def test_replay_reports_refused_lines_by_number_and_field_and_exits_1_unless_allowed(
    stack: LocalGovernor, tmp_path: Path
) -> None:
    # Given a file with a good event, a junk line and an event with a bad sentiment
    lines = [
        json.dumps(fresh(event_id="rc-1", interaction_id="rc-i1", customer_id="rc-c1")),
        "this is not an event",
        json.dumps(fresh(event_id="rc-3", interaction_id="rc-i3", customer_id="rc-c3", sentiment=4)),
    ]
    source = tmp_path / "recorded.ndjson"
    source.write_text("\n".join(lines) + "\n")
    # When it is replayed with only GOVERNOR_URL naming the stack
    replayed = CliRunner().invoke(governor, ["replay", str(source)], env={"GOVERNOR_URL": stack.url})
    # Then each refused line is one refusal with its number (and field), and the exit code is 1
    assert replayed.exit_code == 1, replayed.output
    assert (
        "3 events" not in replayed.stdout
        and "2 events sent, 1 accepted, 2 line(s) refused, 1 decisions" in replayed.stdout
    )
    refused = [line.strip() for line in replayed.stdout.splitlines() if line.strip().startswith("line ")]
    assert len(refused) == 2
    assert refused[0] == "line 2: not JSON"
    assert refused[1].startswith("line 3: sentiment:")
    assert "2 line(s)" in replayed.stderr and "Traceback" not in replayed.output
    # When it is replayed again allowing invalid lines (NDJSON out), it exits 0 and lists them the same
    again = CliRunner().invoke(
        governor, ["replay", str(source), "--allow-invalid", "-o", "ndjson"], env={"GOVERNOR_URL": stack.url}
    )
    assert again.exit_code == 0, again.output
    # (the last line: the in-process stack's functions log to this process's stdout too)
    summary = json.loads(again.stdout.splitlines()[-1])
    assert [(r["line"], r["fields"]) for r in summary["refused"]] == [(2, []), (3, ["sentiment"])]


def test_a_missing_file_is_a_clear_error_without_a_traceback(tmp_path: Path) -> None:
    missing = CliRunner().invoke(governor, ["replay", str(tmp_path / "nope.ndjson")])
    assert missing.exit_code == 2
    assert "nope.ndjson" in missing.stderr and "does not exist" in missing.stderr
    assert "Traceback" not in missing.output


def test_a_url_that_is_not_a_stack_is_said_so(tmp_path: Path) -> None:
    source = tmp_path / "one.ndjson"
    source.write_text(json.dumps(fresh()) + "\n")
    unreachable = CliRunner().invoke(governor, ["replay", str(source), "--url", "http://127.0.0.1:9"])
    assert unreachable.exit_code == 4
    assert "http://127.0.0.1:9" in unreachable.stderr and "Traceback" not in unreachable.output
    # worded as every command words it, and nothing before the message
    assert "(connection refused)" in unreachable.stderr and "Errno" not in unreachable.stderr
    assert unreachable.stderr.startswith("Error: ")


def test_a_file_holding_one_pretty_printed_event_is_that_event() -> None:
    # Given one event over several lines, as infra/example-event.json holds it (what the curl examples post)
    text = json.dumps(detail(event_id="pretty-1"), indent=2)
    # When the file is read
    source = parse(text)
    # Then it is one event from line 1, not a refusal of each line
    assert (len(source.details), source.lines, source.refused) == (1, [1], [])
    assert source.details[0]["event_id"] == "pretty-1"
    # While NDJSON with junk is still refused line by line
    assert [r.line for r in parse("junk\n{\n").refused] == [1, 2]
