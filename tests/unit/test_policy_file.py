"""cli/policy_file.py: policy files read with their lines, problems placed on them, unknown keys
answered with the nearest valid one, partial files merged deep onto a version."""

from __future__ import annotations

import json

import pytest

from cli import policy_file
from cli.policy_file import PolicyFileError

JSON_TEXT = """{
  "caps": {
    "survey": [
      {"max": 1, "days": 30},
      {"max": 4,
       "day": 365}
    ]
  },
  "quiet_hourz": {"start": "21:00"}
}
"""

YAML_TEXT = """# marketing ops, November
survey_sample_rate: 0.5
caps:
  survey:
    - {max: 1, days: 30}
    - max: 4
      day: 365
fatigue:
  pause_day: 90
"""


def test_json_is_read_with_the_line_of_every_key_and_item_and_the_values_json_gives() -> None:
    # When a JSON policy file is parsed
    parsed = policy_file.parse(JSON_TEXT, "p.json")
    # Then the document is exactly json.loads's, and keys and list items have their lines
    assert parsed.document == json.loads(JSON_TEXT)
    assert parsed.lines[("caps", "survey", 1)] == 5
    assert parsed.lines[("caps", "survey", 1, "day")] == 6
    assert parsed.lines[("quiet_hourz",)] == 9
    # And a path below what the file holds is placed at its deepest part that is there
    assert parsed.line_of(("caps", "survey", 1, "day", "x")) == 6


def test_yaml_is_read_with_the_line_of_every_key() -> None:
    parsed = policy_file.parse(YAML_TEXT, "p.yaml")
    assert parsed.document["caps"]["survey"][1] == {"max": 4, "day": 365}
    assert parsed.lines[("caps", "survey", 1, "day")] == 7
    assert parsed.lines[("fatigue", "pause_day")] == 9


@pytest.mark.parametrize(
    ("text", "name", "said"),
    [
        ('{\n  "a": 1,\n}', "p.json", "p.json:3: not valid JSON: Expecting property name"),
        ('{\n  "a" 1\n}', "p.json", "p.json:2: not valid JSON: Expecting ':' delimiter"),
        ('{"a": 1}\n{"b": 2}', "p.json", "p.json:2: not valid JSON: Extra data"),
        ("", "p.json", "p.json:1: not valid JSON: Expecting value"),
        ("[1, 2]", "p.json", "p.json:1: must hold one policy object ({...}), not a list"),
        ("a: [1\nb: 2\n", "p.yml", "p.yml:2: not valid YAML"),
        ("", "p.yaml", "p.yaml:1: must hold one policy object ({...}), not nothing"),
        ('{"version": 3, "kind": "update", "policy": {}}', "v.json", "`governor policy show --raw`"),
    ],
)
def test_a_file_that_is_not_one_policy_object_is_refused_with_its_name_and_line(
    text: str, name: str, said: str
) -> None:
    with pytest.raises(PolicyFileError) as refused:
        policy_file.parse(text, name)
    assert said in str(refused.value)


def test_problems_by_path_are_placed_on_their_lines_and_unknown_keys_get_the_nearest_name() -> None:
    # Given a YAML file with two misspelt keys and a bad value, as the policy API reports them
    parsed = policy_file.parse(YAML_TEXT, "p.yaml")
    reported = [
        {"field": "policy.fatigue.pause_day", "message": "Extra inputs are not permitted"},
        {"field": "policy.caps.survey.1.day", "message": "Extra inputs are not permitted"},
        {"field": "policy.survey_sample_rate", "message": "Input should be less than or equal to 1"},
    ]
    # When they are placed on the file
    found = policy_file.problems(parsed, reported)
    # Then each names its line, in line order, with the valid key nearest the unknown one
    assert [p.located("p.yaml") for p in found] == [
        "p.yaml:2: survey_sample_rate: Input should be less than or equal to 1",
        "p.yaml:7: caps.survey.1.day: Extra inputs are not permitted (did you mean `days`?)",
        "p.yaml:9: fatigue.pause_day: Extra inputs are not permitted (did you mean `pause_days`?)",
    ]


def test_a_key_the_api_leaves_unnamed_is_named_from_the_file() -> None:
    parsed = policy_file.parse('{\n  "skip": {\n    "outcomes ": ["abandoned"]\n  }\n}', "p.json")
    reported = [{"field": "policy.skip.<unknown field>", "message": "Extra inputs are not permitted"}]
    (problem,) = policy_file.problems(parsed, reported)
    assert (problem.where, problem.line, problem.suggestion) == (("skip", "outcomes "), 3, "outcomes")


def test_suggestions_come_from_the_model_at_that_place() -> None:
    assert policy_file.suggest(("quiet_hourz",)) == "quiet_hours"
    assert policy_file.suggest(("overrides", 0, "rules", "survey_sample")) == "survey_sample_rate"
    assert policy_file.suggest(("overrides", 0, "scope", "segmnt")) == "segment"
    assert policy_file.suggest(("caps", "survey", 0, "zzz")) is None
    assert policy_file.unknown_keys({"version": 3, "caps": {"surveys": []}}) == [("caps", "surveys")]


def test_a_partial_file_is_merged_deep_onto_the_version_and_says_what_it_kept() -> None:
    # Given a version and a file that sets the callback caps and one fatigue field
    version = {
        "caps": {"survey": [{"max": 4, "days": 365}], "callback": [{"max": 1, "days": 7}], "any": []},
        "fatigue": {"ignore_after_days": 7, "pause_days": 180},
        "survey_sample_rate": 0.8,
        "overrides": [{"scope": {"segment": "vip"}, "rules": {"survey_sample_rate": 0.1}}],
    }
    partial = {"caps": {"callback": [{"max": 2, "days": 7}]}, "fatigue": {"pause_days": 0}, "overrides": []}
    # When it is merged
    merged, kept = policy_file.merge(version, partial)
    # Then objects merge key by key, lists replace whole, and what came from the version is named
    assert merged == {
        "caps": {"survey": [{"max": 4, "days": 365}], "callback": [{"max": 2, "days": 7}], "any": []},
        "fatigue": {"ignore_after_days": 7, "pause_days": 0},
        "survey_sample_rate": 0.8,
        "overrides": [],
    }
    assert kept == ["caps.survey", "caps.any", "fatigue.ignore_after_days", "survey_sample_rate"]
    # And a whole document keeps nothing
    assert policy_file.merge(version, version) == (version, [])


def test_the_editor_header_lists_problems_at_their_lines_and_is_blanked_before_reading() -> None:
    # Given a JSON body with a problem on its line 3
    body = '{\n  "caps": {\n    "surveys": []\n  }\n}'
    parsed = policy_file.parse(body, "policy-v1.json")
    found = policy_file.problems(
        parsed, [{"field": "policy.caps.surveys", "message": "Extra inputs are not permitted"}]
    )
    # When the file is written back with the header
    text = policy_file.with_header(body, "json", found, "policy-v1.json")
    # Then the header names the line the key is on in the file as written
    (said,) = [line for line in text.splitlines() if "surveys" in line and line.startswith("//")]
    line = int(said.split("line ")[1].split(":")[0])
    assert text.splitlines()[line - 1].strip() == '"surveys": []'
    assert "did you mean `survey`?" in said
    # And reading it again drops the header, keeping the lines where the editor shows them
    stripped = policy_file.strip_header(text, "json")
    assert stripped.splitlines()[line - 1].strip() == '"surveys": []'
    assert policy_file.parse(stripped, "policy-v1.json").lines[("caps", "surveys")] == line
    assert policy_file.body_of(text, "json") == body
