"""What every `governor` command shares: the global settings, user errors, and where output goes.

Data goes to stdout in the format `--output` chose; messages, progress and errors go to stderr, so
`governor export ... > file.csv` never writes an error into the file. Colour and Rich tables only on
a terminal (NO_COLOR respected); piped output is plain text a script can read.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from cli.api import CONFLICT, OK, REFUSED, UNAVAILABLE, USAGE, Api

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "CONFLICT",
    "OK",
    "OUTPUTS",
    "REFUSED",
    "UNAVAILABLE",
    "USAGE",
    "CliError",
    "Settings",
    "info",
    "pass_settings",
    "render",
    "stderr_console",
    "stdout_console",
]

OUTPUTS = ("table", "json", "ndjson", "csv")


@dataclass(frozen=True)
class Settings:
    """The global options, resolved once by the root group (and by options repeated after a
    subcommand); click's ctx.obj, reached with `@pass_settings`."""

    url: str
    url_source: str  # "--url" | "GOVERNOR_URL" | "governor local state file (<path>)" | "default"
    sigv4: bool = False
    profile: str | None = None
    region: str | None = None
    output: str = "table"  # one of OUTPUTS
    debug: bool = False

    def api(self) -> Api:
        return Api(url=self.url, sigv4=self.sigv4, region=self.region, profile=self.profile, url_source=self.url_source)


pass_settings = click.make_pass_decorator(Settings)


class CliError(click.ClickException):
    """A user error: one message (and an optional hint) on stderr, no traceback, a documented exit code."""

    def __init__(self, message: str, exit_code: int = REFUSED, hint: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # per error, not per class
        self.hint = hint

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", file=file, err=file is None)
        if self.hint:
            click.echo(f"Hint: {self.hint}", file=file, err=file is None)


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    # Built per call on the current sys.stdout/stderr (test runners swap them). Rich itself turns
    # colour off when the stream is not a terminal and when NO_COLOR is set.
    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, stderr=stderr, highlight=False, soft_wrap=not stream.isatty())


def stdout_console() -> Console:
    return _console(stderr=False)


def stderr_console() -> Console:
    return _console(stderr=True)


def info(message: str) -> None:
    """A message or progress line for the person at the terminal: stderr, never mixed into data."""
    click.echo(message, err=True)


def value_at(row: dict[str, Any], key: str) -> Any:
    """`reasons.0` reads row["reasons"][0]: columns can name a field inside a record as the API gives it."""
    value: Any = row
    for part in key.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit():
            value = value[int(part)] if int(part) < len(value) else None
        else:
            return None
    return value


def cell(value: Any, *, empty: str = "-") -> str:
    if value is None or value == "":
        return empty
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value) or empty
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def plain_table(rows: list[list[str]], header: list[str]) -> str:
    """Aligned columns without colour or box drawing: what a pipe, a CI log or `grep` wants."""
    cells = [header, *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def render(
    settings: Settings,
    rows: list[dict[str, Any]],
    columns: list[tuple[str, str]],
    *,
    title: str | None = None,
    more: str | None = None,
) -> None:
    """Data to stdout in `settings.output`: `columns` ((key, header); a key may be dotted, `reasons.0`)
    choose the table's and the CSV's columns; json (one array) and ndjson carry each record whole.
    `title` and `more` (how many more there are and the command to get them) go to stderr, except a
    terminal table's title."""
    output = settings.output
    if output == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
    elif output == "ndjson":
        for row in rows:
            click.echo(json.dumps(row, default=str))
    elif output == "csv":
        stream = sys.stdout
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow([key for key, _ in columns])
        writer.writerows([[cell(value_at(row, key), empty="") for key, _ in columns] for row in rows])
        stream.flush()
    else:
        table_rows = [[cell(value_at(row, key)) for key, _ in columns] for row in rows]
        headers = [header for _, header in columns]
        if sys.stdout.isatty():
            from rich.table import Table
            from rich.text import Text

            table = Table(*headers, title=title, title_justify="left", header_style="bold")
            for table_row in table_rows:
                table.add_row(*(Text(value) for value in table_row))  # data, never Rich markup
            stdout_console().print(table)
        else:
            if title:
                info(title)
            click.echo(plain_table(table_rows, headers))
    if more:
        info(more)
