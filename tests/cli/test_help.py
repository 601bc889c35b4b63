"""`governor --help` and every command's: a one-line summary per command in each listing, and
examples under each command's help (CliRunner; no stack needed)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from cli.app import COMMANDS, governor

SUBCOMMANDS = ["show", "edit", "validate", "diff", "simulate", "apply", "history", "rollback"]
EVERY = [[], *([name] for name in COMMANDS), *(["policy", name] for name in SUBCOMMANDS)]


def help_of(path: list[str]) -> str:
    result = CliRunner().invoke(governor, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("path", EVERY, ids=lambda p: " ".join(p) or "governor")
def test_every_help_ends_with_runnable_examples(path: list[str]) -> None:
    # When a command's help is shown
    text = help_of(path)
    # Then it has examples, each starting with the command itself
    assert "Examples:" in text
    examples = text.split("Examples:", 1)[1].strip().splitlines()
    assert examples
    assert all(
        line.strip().startswith(("governor ", "EDITOR=")) and all(word in line for word in path) for line in examples
    ), examples


@pytest.mark.parametrize("path", [[], ["policy"]], ids=["governor", "policy"])
def test_each_command_of_a_listing_has_a_whole_one_line_summary(path: list[str]) -> None:
    # When a group's help lists its commands on an 80-column terminal
    text = help_of(path)
    listing = [line for line in text.split("Commands:", 1)[1].split("Examples:", 1)[0].splitlines() if line.strip()]
    # Then each command has one line (no wrapped continuation), never cut off with "..."
    assert all(len(line) - len(line.lstrip()) == 2 for line in listing), listing
    assert not any(line.rstrip().endswith("...") for line in listing)
    group = governor if not path else governor.get_command(click.Context(governor), path[0])
    assert isinstance(group, click.Group)
    assert len(listing) == len(group.list_commands(click.Context(group)))


def test_the_exit_codes_in_the_root_help_include_ctrl_c_and_a_closed_pipe() -> None:
    text = " ".join(help_of([]).split())
    assert "130 after Ctrl-C" in text and "141 when the reader of stdout went away" in text
