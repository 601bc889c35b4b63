"""`governor policy ...` through Click's CliRunner against a local stack: the show --raw round trip,
partial files merged onto the current version, problems at their file lines, and the edit loop."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.api import Api
from cli.app import governor
from infra.local.stack import LocalGovernor

pytestmark = pytest.mark.server


def run(stack: LocalGovernor, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(governor, ["--url", stack.url, "policy", "--author", "maria", *args], env=env)


def current(stack: LocalGovernor) -> dict[str, Any]:
    body, _ = Api(url=stack.url).call("GET", "/policy")
    return dict(body)


def put(stack: LocalGovernor, document: dict[str, Any], comment: str, author: str = "omar") -> int:
    based_on = current(stack)["version"]
    api = Api(url=stack.url, author=author)
    body, _ = api.call("PUT", "/policy", {"policy": document, "comment": comment}, {"If-Match": f'"{based_on}"'})
    return int(body["version"])


def test_show_raw_prints_the_document_validate_diff_and_apply_take(stack: LocalGovernor, tmp_path: Path) -> None:
    # Given the current policy printed with --raw
    shown = run(stack, "show", "--raw")
    assert shown.exit_code == 0, shown.stderr
    raw = tmp_path / "raw.json"
    raw.write_text(shown.stdout)
    # When it is validated and diffed as it is
    validated = run(stack, "validate", str(raw))
    diffed = run(stack, "diff", str(raw))
    # Then it is valid, whole (nothing merged in) and changes nothing
    assert validated.exit_code == 0, validated.output
    assert validated.stdout.strip() == f"{raw}: valid"
    assert (diffed.exit_code, diffed.stdout.strip()) == (0, "no changes")
    # While `show` (for reading) still prints the version's rules, who made it and why
    table = run(stack, "show")
    assert table.exit_code == 0
    assert "caps.survey" in table.stdout and "version" in table.stderr


def test_a_partial_file_is_merged_onto_the_current_version_never_the_default(
    stack: LocalGovernor, tmp_path: Path
) -> None:
    # Given a current version that is not the default: a 96 h gap (the default survey caps, 4 per 365 days, kept)
    document = current(stack)["policy"]
    before = put(stack, {**document, "min_gap_hours_before_survey": 96}, "longer gap")
    # And a file that only halves surveys
    partial = tmp_path / "halve.yaml"
    partial.write_text("survey_sample_rate: 0.5\n")
    # When it is diffed
    diffed = run(stack, "diff", str(partial))
    # Then the diff is the sample rate alone, merged onto the current version, naming what it kept
    assert diffed.exit_code == 0, diffed.output
    assert f"merged onto version {before}" in diffed.stdout and "caps" in diffed.stdout
    assert "survey_sample_rate" in diffed.stdout
    assert "min_gap" not in diffed.stdout.split("kept from it")[0] and "caps.survey " not in diffed.stdout
    # When it is applied
    applied = run(stack, "apply", str(partial), "-m", "halve surveys")
    # Then the new version keeps the current caps (4 per 365 days) and gap, and changes only the rate
    assert applied.exit_code == 0, applied.output
    assert f"based on {before}" in applied.stdout
    now = current(stack)
    assert now["version"] == before + 1
    assert {"max": 4, "days": 365, "hours": None} in now["policy"]["caps"]["survey"]
    assert now["policy"]["min_gap_hours_before_survey"] == 96
    assert [d["path"] for d in now["diff"]] == ["survey_sample_rate"]


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("caps.yaml", "survey_sample_rate: 0.5\ncaps:\n  survey:\n    - {max: 1, day: 30}\n", 4),
        ("caps.json", '{\n  "caps": {\n    "survey": [\n      {"max": 1, "day": 30}\n    ]\n  }\n}\n', 4),
    ],
)
def test_problems_name_the_file_and_line_and_unknown_keys_the_nearest_valid_one(
    stack: LocalGovernor, tmp_path: Path, name: str, text: str, line: int
) -> None:
    path = tmp_path / name
    path.write_text(text)
    before = current(stack)["version"]
    # When the file is validated, diffed and applied
    validated = run(stack, "validate", str(path))
    applied = run(stack, "apply", str(path), "-m", "typo")
    # Then each says where, at the file's line, with the suggestion, and nothing is applied
    said = f"{path}:{line}: caps.survey.0.day: Extra inputs are not permitted (did you mean `days`?)"
    assert (validated.exit_code, said in validated.stdout) == (1, True), validated.output
    assert (applied.exit_code, said in applied.stderr, applied.stdout) == (1, True, ""), applied.output
    assert current(stack)["version"] == before


def test_a_syntax_error_and_a_missing_file_are_one_clear_message(stack: LocalGovernor, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "survey_sample_rate": 0.5,\n}\n')
    refused = run(stack, "validate", str(broken))
    assert refused.exit_code == 1
    assert f"{broken}:3: not valid JSON" in refused.stderr and "Traceback" not in refused.output
    missing = run(stack, "diff", str(tmp_path / "nope.yaml"))
    assert (missing.exit_code, "no such file" in missing.stderr) == (1, True)


EDITOR = textwrap.dedent(
    """
    import json, pathlib, sys, urllib.request
    path = pathlib.Path(sys.argv[1])
    state = pathlib.Path({state!r})
    seen = json.loads(state.read_text()) if state.exists() else []
    seen.append(path.read_text())
    state.write_text(json.dumps(seen))
    text = path.read_text()
    body = text[text.index("{{"):]
    document = json.loads(body)
    if len(seen) == 1:
        document["caps"]["survey"][0]["day"] = 30
        document["survey_sample_rate"] = 0.25
    else:
        document["caps"]["survey"][0].pop("day")
    path.write_text(json.dumps(document, indent=2))
    if {meanwhile!r} and len(seen) == 2:
        # Someone else applies a version while this edit is open.
        current = json.loads(urllib.request.urlopen({url!r} + "/policy").read())
        change = dict(current["policy"], min_gap_hours_before_survey=100)
        request = urllib.request.Request(
            {url!r} + "/policy", method="PUT",
            data=json.dumps({{"policy": change, "comment": "gap 100"}}).encode(),
            headers={{"If-Match": '"%d"' % current["version"], "X-Governor-Author": "omar",
                     "Content-Type": "application/json"}},
        )
        urllib.request.urlopen(request).read()
    """
)


def editor(tmp_path: Path, stack: LocalGovernor, meanwhile: bool = False) -> tuple[dict[str, str], Path]:
    """EDITOR set to a script that saves an unknown key first, then fixes it (a counter in a file)."""
    state = tmp_path / "seen.json"
    script = tmp_path / "editor.py"
    script.write_text(EDITOR.format(state=str(state), url=stack.url, meanwhile=meanwhile))
    return {"EDITOR": f"{sys.executable} {script}", "VISUAL": ""}, state


def test_edit_validates_on_save_reopens_with_the_problems_marked_then_applies(
    stack: LocalGovernor, tmp_path: Path
) -> None:
    # Given an editor that first saves an unknown key, then removes it
    env, state = editor(tmp_path, stack)
    before = current(stack)
    # When the policy is edited for a script
    edited = run(stack, "edit", "--yes", "-m", "quarter surveys", env=env)
    # Then the editor opened twice: the second time with the problem at the top, at its line
    assert edited.exit_code == 0, edited.output
    first, second = json.loads(state.read_text())
    assert json.loads(first) == before["policy"]
    marked = [line for line in second.splitlines() if "caps.survey.0.day" in line]
    assert len(marked) == 1 and marked[0].startswith("//") and "did you mean `days`?" in marked[0]
    line = int(marked[0].split("line ")[1].split(":")[0])
    assert '"day": 30' in second.splitlines()[line - 1]
    assert "caps.survey.0.day" in edited.stderr
    # And the diff was shown, then applied as a new version based on the one the edit started from
    assert "survey_sample_rate" in edited.stdout
    now = current(stack)
    assert (now["version"], now["based_on"], now["comment"]) == (
        before["version"] + 1,
        before["version"],
        "quarter surveys",
    )
    assert now["policy"]["survey_sample_rate"] == 0.25


def test_edit_says_who_applied_meanwhile_and_shows_the_new_diff(stack: LocalGovernor, tmp_path: Path) -> None:
    # Given an editor during which someone else applies a 100 h gap
    env, _ = editor(tmp_path, stack, meanwhile=True)
    before = current(stack)["version"]
    document = current(stack)["policy"]
    # When the edit is applied
    edited = run(stack, "edit", "--yes", "-m", "quarter surveys", env=env)
    # Then nothing of it is applied: exit 3, naming their version and author, and the changes against it
    assert edited.exit_code == 3, edited.output
    assert f"the policy changed since version {before}: version {before + 1} (update) by omar" in edited.stderr
    assert "min_gap_hours_before_survey" in edited.stderr and "100" in edited.stderr
    now = current(stack)
    assert (now["version"], now["comment"]) == (before + 1, "gap 100")
    assert now["policy"]["survey_sample_rate"] == document["survey_sample_rate"]


def test_edit_aborts_when_the_file_is_emptied(stack: LocalGovernor, tmp_path: Path) -> None:
    script = tmp_path / "empty.py"
    script.write_text("import pathlib, sys\npathlib.Path(sys.argv[1]).write_text('')\n")
    before = current(stack)["version"]
    edited = run(stack, "edit", "--yes", "-m", "x", env={"EDITOR": f"{sys.executable} {script}", "VISUAL": ""})
    assert (edited.exit_code, "nothing was applied" in edited.stderr) == (1, True)
    assert current(stack)["version"] == before


def test_history_says_how_many_more_and_the_command_to_get_them(stack: LocalGovernor) -> None:
    put(stack, current(stack)["policy"] | {"survey_delay_minutes": 60}, "shorter delay")
    listed = run(stack, "history", "--limit", "1")
    assert listed.exit_code == 0
    assert len([line for line in listed.stdout.splitlines() if "shorter delay" in line]) == 1
    assert "older version(s) not shown: governor policy history --limit 1 --next-token " in listed.stderr


def test_show_raw_piped_into_validate_dash_is_valid(stack: LocalGovernor) -> None:
    # Given the current document as `policy show --raw` prints it
    shown = run(stack, "show", "--raw")
    assert shown.exit_code == 0, shown.stderr
    # When it is piped into `validate -` (standard input) and `diff -`
    validated = CliRunner().invoke(governor, ["--url", stack.url, "policy", "validate", "-"], input=shown.stdout)
    diffed = CliRunner().invoke(governor, ["--url", stack.url, "policy", "diff", "-"], input=shown.stdout)
    # Then standard input is read as the file, named <stdin>
    assert (validated.exit_code, validated.stdout.strip()) == (0, "<stdin>: valid"), validated.output
    assert (diffed.exit_code, diffed.stdout.strip()) == (0, "no changes"), diffed.output


def test_yaml_on_standard_input_is_read_with_its_lines(stack: LocalGovernor) -> None:
    # Given a YAML policy with an unknown key on its fourth line, on standard input
    text = "caps:\n  survey:\n    - max: 2\n      day: 30\n"
    # When it is validated from `-`
    result = CliRunner().invoke(governor, ["--url", stack.url, "policy", "validate", "-"], input=text)
    # Then the problem is at <stdin>:4 with the nearest valid key
    assert result.exit_code == 1
    assert "<stdin>:4: caps.survey.0.day: Extra inputs are not permitted (did you mean `days`?)" in result.stdout


def test_a_version_record_is_refused_with_the_command_that_prints_the_document(
    stack: LocalGovernor, tmp_path: Path
) -> None:
    # Given the version record `policy show -o json` prints (with based_on and diff, as the API answers)
    shown = CliRunner().invoke(governor, ["--url", stack.url, "-o", "json", "policy", "show"])
    assert shown.exit_code == 0, shown.stderr
    record = tmp_path / "version.json"
    record.write_text(shown.stdout)
    # When it is validated
    result = run(stack, "validate", str(record))
    # Then one message says what it is and what to write instead, not a problem per wrapper key
    assert result.exit_code == 1
    assert "holds a policy version as `governor policy show` prints it" in result.stderr
    assert "policy show --raw" in result.stderr
    assert "Extra inputs" not in result.output
