"""`governor policy ...` against the local stack, as marketing ops would use it."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cli import main as cli_main
from infra.local.stack import LocalGovernor
from shared import wiring
from shared.domain import engine
from shared.domain.contacts import ContactLedger
from shared.domain.events import InteractionClosed
from shared.domain.policy import Policy
from tests.conftest import detail
from tests.integration.test_policy_api import documented_policies, probes

pytestmark = pytest.mark.server


def governor(stack: LocalGovernor, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Exit code and stdout (the data); see `governor_err` for stderr."""
    code, out, _ = governor_err(stack, capsys, *args)
    return code, out


def governor_err(stack: LocalGovernor, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main.main(["policy", "--url", stack.url, "--author", "maria", *args])
    captured = capsys.readouterr()
    return code, _without_function_logs(captured.out), captured.err


def _without_function_logs(out: str) -> str:
    """What the command printed: the in-process stack's functions log to the same stdout here (the
    log stream function may run a batch mid-command), which a real stack does in its own process."""
    return "".join(line for line in out.splitlines(keepends=True) if not _is_function_log(line))


def _is_function_log(line: str) -> bool:
    """A Powertools log line or metrics (EMF) line of an in-process function."""
    if not line.startswith(('{"level":', '{"_aws":')):
        return False
    try:
        record = json.loads(line)
    except ValueError:
        return False
    if not isinstance(record, dict):
        return False
    return ("function_name" in record and "message" in record) or "CloudWatchMetrics" in record.get("_aws", {})


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_marketing_ops_change_simulate_roll_back_from_the_command_line(
    stack: LocalGovernor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a policy file with mistakes
    bad = write(tmp_path, "bad.yaml", "survey_sample_rate: 1.5\ncaps:\n  survey:\n    - {max: 1, days: 0}\n")
    # When it is validated, it is refused with each problem by file line and path, and exit code 1
    code, out = governor(stack, capsys, "validate", bad)
    assert code == 1
    assert f"{bad}:1: survey_sample_rate: " in out and f"{bad}:4: caps.survey.0.days: " in out

    # Given a good one (YAML), diff shows what it would change
    good = write(tmp_path, "good.yaml", "survey_sample_rate: 0.5\n")
    code, out = governor(stack, capsys, "diff", good)
    assert code == 0
    assert "survey_sample_rate" in out and "1.0" in out and "0.5" in out

    # When it is simulated, a table compares current and candidate
    code, out = governor(stack, capsys, "simulate", good, "--days", "7")
    assert code == 0
    assert "candidate" in out and "events would be decided differently" in out

    # When it is applied, it becomes version 1, with the author and message in the history
    code, out = governor(stack, capsys, "apply", good, "-m", "halve surveys")
    assert (code, "version 1 is current" in out) == (0, True)
    code, out = governor(stack, capsys, "history")
    assert code == 0
    assert "halve surveys" in out and "maria" in out

    # When someone applies a change based on the old version, exit code 3 says: conflict
    other = write(tmp_path, "other.json", json.dumps({"min_gap_hours_before_survey": 96}))
    code, out, err = governor_err(stack, capsys, "apply", other, "-m", "longer gap", "--based-on", "0")
    assert (code, out) == (3, "")
    assert "412" in err and "the policy changed since version 0: version 1 (update) by maria" in err

    # When version 0 is rolled back to, it becomes version 2 with the default rules
    code, out = governor(stack, capsys, "rollback", "0", "-m", "back to defaults")
    assert code == 0
    assert "version 2 is current" in out
    code, out = governor(stack, capsys, "show", "--json")
    shown = json.loads(out)
    assert (shown["version"], shown["kind"], shown["policy"]["survey_sample_rate"]) == (2, "rollback", 1.0)


def test_an_unreachable_api_exits_with_code_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main.main(["policy", "--url", "http://127.0.0.1:9", "show"])
    assert code == 4
    captured = capsys.readouterr()
    assert "cannot reach the governor API at http://127.0.0.1:9" in captured.err and captured.out == ""


def test_an_unreadable_file_exits_with_code_1(
    stack: LocalGovernor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = governor_err(stack, capsys, "validate", write(tmp_path, "broken.json", "{not json"))
    assert (code, out) == (1, "")
    assert "broken.json:1: not valid JSON" in err and "Traceback" not in err


def decide_over_http(stack: LocalGovernor, fields: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{stack.url}/decide", data=json.dumps(fields).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        decision: dict[str, Any] = json.loads(answer.read())
    return decision


@pytest.mark.parametrize("index", range(len(documented_policies())))
def test_every_documented_policy_applied_with_the_cli_then_decides_as_validated(
    stack: LocalGovernor, tmp_path: Path, capsys: pytest.CaptureFixture[str], index: int
) -> None:
    # Given a policy example of docs/policy.md, as `governor policy validate` reads it
    document = documented_policies()[index]
    validated = Policy.model_validate(document)
    path = write(tmp_path, "example.json", json.dumps(document))
    # (an example is partial: it is merged onto the current version, so start from the default's rules)
    assert governor(stack, capsys, "rollback", "0", "-m", "defaults")[0] == 0
    assert governor(stack, capsys, "validate", path)[0] == 0
    # When it is applied with `governor policy apply`
    code, out = governor(stack, capsys, "apply", path, "-m", "from the docs")
    assert code == 0, out
    version = int(re.search(r"version (\d+) is current", out).group(1))  # type: ignore[union-attr]
    # Then `governor policy show` shows it exactly as validated
    code, out = governor(stack, capsys, "show", "--json")
    assert (json.loads(out)["version"], json.loads(out)["policy"]) == (version, validated.document())
    # And POST /decide on the stack decides each scope the document names as the validated policy does
    cached = wiring.current_policy()
    ttl, cached.ttl = cached.ttl, 0.0  # deciders pick the new version up at once, not within 30 s
    try:
        # Decided now (wall clock): one probe per scope and outcome
        for n, probe in enumerate(p for p in probes(document) if p["hour"] == 12):
            customer = f"cli-{index}-{n}-{uuid.uuid4().hex[:8]}"
            fields = {k: v for k, v in probe.items() if k != "hour"}
            closed = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
            decision = decide_over_http(
                stack,
                detail(
                    event_id=f"e-{customer}",
                    interaction_id=f"i-{customer}",
                    customer_id=customer,
                    closed_at=closed,
                    **fields,
                ),
            )
            event = InteractionClosed.model_validate(
                detail(
                    event_id=f"e-{customer}",
                    interaction_id=f"i-{customer}",
                    customer_id=customer,
                    closed_at=closed,
                    **fields,
                )
            )
            at = datetime.fromisoformat(decision["decided_at"])
            expected = engine.decide(
                event, ContactLedger(customer), validated.model_copy(update={"version": version}), at
            )
            assert decision == expected.model_dump(mode="json"), probe
    finally:
        cached.ttl = ttl
