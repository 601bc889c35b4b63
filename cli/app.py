"""The `governor` command: the root group, its global options, and how every error ends.

Global options are declared once (GLOBAL_OPTIONS) and accepted before or after the subcommand:
`governor --url X policy show` and `governor policy show --url X` are the same. Subcommands load
lazily (Click's LazyGroup pattern), so `governor why ...` never imports the local emulator.

A command returns None (exit 0) or an int exit code, or raises CliError / ApiError; `main()` turns
every user error into one message on stderr and a documented exit code, never a traceback
(`--debug` adds one).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import click
from click.core import ParameterSource

from cli.api import DEFAULT_URL, REFUSED, UNAVAILABLE, USAGE, ApiError
from cli.context import OUTPUTS, CliError, Settings

# name -> "module:attribute"; loaded only when that command runs (or for --help).
COMMANDS: dict[str, str] = {
    "local": "cli.local:local",
    "replay": "cli.replay:replay",
    "policy": "cli.policy:policy",
    "console": "cli.console:console",
    "decisions": "cli.admin:decisions",
    "why": "cli.admin:why",
    "customer": "cli.admin:customer",
    "opt-out": "cli.admin:opt_out",
    "stats": "cli.admin:stats",
    "export": "cli.admin:export",
}

# Help: a one-line summary for each command's row in its group's listing (Click would cut the first
# sentence of the docstring mid-phrase), and examples shown under each `--help`. Kept here, in one
# place, so every command's help has the same shape.
SUMMARIES: dict[str, str] = {
    "local": "Run the whole governor locally on moto (other commands find it).",
    "replay": "Send an NDJSON file of events and summarise the decisions.",
    "console": "Serve the web console for an API (a deployed one with --sigv4).",
    "decisions": "List the decisions of a customer or of a time range.",
    "why": "Explain one decision, rule by rule, and what happened since.",
    "customer": "A customer's windows, opt-outs, pending follow-ups, history.",
    "opt-out": "Record or lift (--undo) a customer's opt-out.",
    "stats": "Decisions per UTC day by action and reason.",
    "export": "Stream every decision of a range as CSV or NDJSON.",
    "policy": "Show, edit, validate, simulate, apply, roll back policies.",
    "policy show": "The current policy (or --version N), or --raw its document alone.",
    "policy edit": "Edit the current policy in $EDITOR, validate, diff and apply it.",
    "policy validate": "Check a policy file; exit 1 with every problem by line.",
    "policy diff": "What a policy file would change in the current version.",
    "policy simulate": "Replay logged events under the current policy and a file's.",
    "policy apply": "Make a policy file current (exit 3 if changed meanwhile).",
    "policy history": "Policy versions, newest first.",
    "policy rollback": "Make version N current again, as a new version.",
}

EXAMPLES: dict[str, list[str]] = {
    "": [
        "governor local --port 18765            # then, in another terminal, no --url needed:",
        "governor decisions --since 7d --action survey",
        "governor why dcn_kutv632ckbkjrtvehdywr3gxle",
        "governor export --since 30d --format csv > decisions.csv",
        "governor policy show --raw > policy.json",
        "governor --url https://API --sigv4 --profile ops policy history",
    ],
    "local": [
        "governor local                         # http://127.0.0.1:8765, sample replayed",
        "governor local --clock event --port 18765",
        "governor local --port 0 --no-replay --ephemeral",
    ],
    "replay": [
        "governor replay infra/sample-events.ndjson",
        "governor replay events.ndjson --allow-invalid",
        "governor -o json replay events.ndjson > report.json",
        "governor replay events.ndjson --in-process   # a throwaway stack",
    ],
    "console": [
        "governor console                       # the API governor local serves",
        "governor console --url https://API --sigv4 --profile admin",
    ],
    "decisions": [
        "governor decisions --customer cust-201518",
        "governor decisions --since 7d --action survey",
        "governor decisions --from 2026-11-01 --to 2026-11-22 --reason SURVEY_CAP_REACHED --limit 5",
        "governor decisions --since 90d --state cancelled --all -o csv > cancelled.csv",
    ],
    "why": [
        "governor why dcn_kutv632ckbkjrtvehdywr3gxle",
        "governor why dcn_kutv632ckbkjrtvehdywr3gxle -o json",
    ],
    "customer": [
        "governor customer cust-201518",
        "governor customer cust-201518 -o json",
    ],
    "opt-out": [
        'governor opt-out cust-201518 --kind survey --source "call 42"',
        "governor opt-out cust-201518 --kind survey --undo",
    ],
    "stats": [
        "governor stats                         # the last 30 days",
        "governor stats --from 2026-10-01 --to 2026-11-30 -o csv",
    ],
    "export": [
        "governor export --from 2026-11-01 --to 2026-11-30 --format csv > november.csv",
        "governor export --since 400d > year.ndjson   # any length: split into 31-day requests",
    ],
    "policy": [
        "governor policy show --raw > policy.json",
        "governor policy validate policy.json",
        'governor policy apply policy.json -m "halve surveys"',
        'governor policy edit -m "halve surveys"',
    ],
    "policy show": [
        "governor policy show",
        "governor policy show --version 3 -o json   # the version record",
        "governor policy show --raw > policy.json   # the document validate/diff/apply take",
    ],
    "policy edit": [
        'governor policy edit -m "halve surveys"',
        "EDITOR=nano governor policy edit --format yaml",
        'governor policy edit -m "from a script" --yes',
    ],
    "policy validate": [
        "governor policy validate policy.json",
        "governor policy show --raw | governor policy validate -",
    ],
    "policy diff": [
        "governor policy diff halve.yaml",
        "governor policy diff policy.json --based-on 3",
    ],
    "policy simulate": [
        "governor policy simulate halve.yaml --days 30",
        "governor policy simulate halve.yaml --days 365 --job",
    ],
    "policy apply": [
        'governor policy apply halve.yaml -m "halve surveys"',
        'governor policy apply halve.yaml -m "halve surveys" --based-on 3',
    ],
    "policy history": [
        "governor policy history --limit 5",
    ],
    "policy rollback": [
        'governor policy rollback 3 -m "back to before the campaign"',
    ],
}


def document(command: click.Command, path: str) -> click.Command:
    """Gives `command` (and a group's commands) its summary and examples, once."""
    if getattr(command, "_governor_documented", False):
        return command
    command._governor_documented = True  # type: ignore[attr-defined]
    if path in SUMMARIES:
        command.short_help = SUMMARIES[path]
    if path in EXAMPLES:
        # \b keeps Click from rewrapping the lines of this paragraph.
        examples = "\b\nExamples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[path])
        command.epilog = f"{command.epilog}\n\n{examples}" if command.epilog else examples
    if isinstance(command, click.Group):
        for name, child in command.commands.items():
            document(child, f"{path} {name}".strip())
    return command


INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
# 128 + SIGPIPE: what a shell reports for a tool the closed pipe killed (`cat`, `grep`), so a script's
# `${PIPESTATUS[0]}` tells "the reader stopped early" apart from 1, which means refused here.
PIPE_CLOSED = 141


@dataclass
class _Run:
    """What `main()` needs after a failure: the settings in force and whether --debug was given."""

    settings: Settings | None = None
    debug: bool = False


_run = _Run()


def resolve_url(option: str | None, source: ParameterSource | None) -> tuple[str, str]:
    """--url, then GOVERNOR_URL, then the address a running `governor local` wrote, then the default."""
    if option:
        return option, "GOVERNOR_URL" if source == ParameterSource.ENVIRONMENT else "--url"
    try:
        from infra.local import state_file
    except ImportError:
        return DEFAULT_URL, "default"
    try:
        found = state_file.read()
    except Exception:  # a state file we cannot read is no address; the default still applies
        found = None
    if found is not None:
        return str(found.url), f"governor local state file ({state_file.state_path()})"
    return DEFAULT_URL, "default"


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("followup-governor")
    except PackageNotFoundError:  # run from a checkout without `pip install`
        import tomllib
        from pathlib import Path

        found = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"][
            "version"
        ]
    click.echo(f"governor {found}")
    ctx.exit()


# The global options, once. On the root group they build Settings; repeated after a subcommand
# (added to every command by `add_global_options`) they replace the field they name.
GLOBAL_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (
        ("--url",),
        {
            "metavar": "URL",
            "help": "API base URL [env GOVERNOR_URL; else the running `governor local`; else " + DEFAULT_URL + "]",
        },
    ),
    (
        ("--sigv4",),
        {"is_flag": True, "help": "Sign requests with your AWS credentials (the deployed, IAM-authorised API)."},
    ),
    (("--profile",), {"metavar": "NAME", "help": "AWS profile to sign with (with --sigv4)."}),
    (("--region",), {"metavar": "REGION", "help": "AWS region to sign for (with --sigv4)."}),
    (
        ("--output", "-o"),
        {"type": click.Choice(OUTPUTS), "help": "How data is printed to stdout [default: table]."},
    ),
    (("--debug",), {"is_flag": True, "help": "Show the traceback of an error."}),
]


def _override(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A global option given after a subcommand: a copy of the settings with that field replaced."""
    if ctx.resilient_parsing or ctx.get_parameter_source(str(param.name)) != ParameterSource.COMMANDLINE:
        return value
    settings = ctx.find_object(Settings) or _root_settings()
    name = str(param.name)
    changes = {"url": value, "url_source": "--url"} if name == "url" else {name: value}
    settings = replace(settings, **changes)
    ctx.obj = settings
    _run.settings = settings
    _run.debug = settings.debug
    return value


def _root_settings() -> Settings:
    url, source = resolve_url(None, None)
    return Settings(url=url, url_source=source)


def add_global_options(command: click.Command) -> click.Command:
    """Adds the global options to a command (and, for a group, to its commands), once: each is
    accepted after the subcommand too. Safe to call again; a command's own option of the same name wins."""
    taken = {param.name for param in command.params} | {
        opt for param in command.params for opt in getattr(param, "opts", [])
    }
    for declarations, attributes in GLOBAL_OPTIONS:
        name = declarations[0].lstrip("-")
        if name in taken or any(d in taken for d in declarations):
            continue
        command.params.append(
            click.Option(
                list(declarations),
                **{k: v for k, v in attributes.items() if k != "help"},
                default=None,
                expose_value=False,
                callback=_override,
                hidden=True,  # documented once, on `governor --help`
            )
        )
    if isinstance(command, click.Group):
        for child in command.commands.values():
            add_global_options(child)
    return command


class LazyGroup(click.Group):
    """Click's documented lazy-loading group: subcommands imported from "module:attribute" on use."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command | None:
        module_name, attribute = self.lazy[cmd_name].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:  # a command whose module is not part of this install
                return None
            raise
        command = getattr(module, attribute, None)
        if not isinstance(command, click.Command):
            return None
        return document(add_global_options(command), cmd_name)


class _PipeClosed(Exception):
    """stdout's reader went away. Click's `main` turns a BrokenPipeError into exit 1 (our "refused")
    on its own, so the root group re-raises it as this, which Click leaves alone."""


class GovernorGroup(LazyGroup):
    """The root group; its `main` maps every failure to a message and an exit code (also under CliRunner)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as error:
            raise _PipeClosed from error

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        code = run_safely(
            lambda: super(GovernorGroup, self).main(
                args, prog_name or "governor", complete_var, standalone_mode=False, **extra
            )
        )
        if standalone_mode:
            sys.exit(code)
        return code


@click.group(
    cls=GovernorGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.option("--url", envvar="GOVERNOR_URL", metavar="URL", help=GLOBAL_OPTIONS[0][1]["help"])
@click.option("--sigv4", is_flag=True, help=GLOBAL_OPTIONS[1][1]["help"])
@click.option("--profile", metavar="NAME", help=GLOBAL_OPTIONS[2][1]["help"])
@click.option("--region", metavar="REGION", help=GLOBAL_OPTIONS[3][1]["help"])
@click.option(
    "--output",
    "-o",
    type=click.Choice(OUTPUTS),
    default="table",
    envvar="GOVERNOR_OUTPUT",
    show_default=True,
    help="How data is printed to stdout [env GOVERNOR_OUTPUT].",
)
@click.option("--debug", is_flag=True, envvar="GOVERNOR_DEBUG", help=GLOBAL_OPTIONS[5][1]["help"])
@click.option(
    "--version", is_flag=True, expose_value=False, is_eager=True, callback=_version, help="Show the version and exit."
)
@click.pass_context
def governor(
    ctx: click.Context,
    *,
    url: str | None,
    sigv4: bool,
    profile: str | None,
    region: str | None,
    output: str,
    debug: bool,
) -> None:
    """The follow-up governor: run it locally, inspect its decisions, edit its contact policy.

    Global options work before or after the subcommand. Data goes to stdout, messages and errors
    to stderr. Exit codes: 0 done, 1 refused, 2 usage, 3 conflict, 4 API unreachable or failing,
    130 after Ctrl-C, 141 when the reader of stdout went away (`| head`).
    """
    resolved, source = resolve_url(url, ctx.get_parameter_source("url"))
    settings = Settings(
        url=resolved, url_source=source, sigv4=sigv4, profile=profile, region=region, output=output, debug=debug
    )
    ctx.obj = settings
    _run.settings = settings
    _run.debug = debug


document(governor, "")


def unreachable(error: ApiError, settings: Settings | None) -> str:
    url = error.url or (settings.url if settings else DEFAULT_URL)
    source = settings.url_source if settings and settings.url == url else "the command"
    reason = error.body.get("message", "")
    if source == "default":
        source = "the default: no --url, no GOVERNOR_URL, no running `governor local`"
    return f"cannot reach the governor API at {url} ({reason}); the URL came from {source}"


UNREACHABLE_HINT = "point elsewhere with --url URL or GOVERNOR_URL=URL, or start the local stack with `governor local`"


def run_safely(invoke: Callable[[], Any]) -> int:
    """Runs the command; every way it can end becomes an exit code, user errors without a traceback."""
    # Powertools warns on every invocation that emits no metric (a refused request); noise here.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    _run.settings, _run.debug = None, False
    try:
        result = invoke()
        sys.stdout.flush()
        return result if isinstance(result, int) else 0
    except (BrokenPipeError, _PipeClosed):
        return _pipe_closed()
    except click.exceptions.Abort as abort:
        if isinstance(abort.__cause__, KeyboardInterrupt):
            return INTERRUPTED
        click.echo("Aborted.", err=True)
        return REFUSED
    except KeyboardInterrupt:
        click.echo("", err=True)
        return INTERRUPTED
    except click.ClickException as error:
        _traceback_if_debug()
        error.show()
        return error.exit_code
    except ApiError as error:
        _traceback_if_debug()
        if error.status == 0 and error.code == "UNREACHABLE":
            CliError(unreachable(error, _run.settings), UNAVAILABLE, hint=UNREACHABLE_HINT).show()
        elif error.status == 0:  # nothing was sent: a URL that is not http(s), no credentials to sign with
            code = USAGE if error.code == "BAD_URL" else REFUSED
            CliError(str(error.body.get("message", error.code)), code).show()
            return code
        else:
            CliError(clean(error.describe()), error.exit_code).show()
        return error.exit_code
    except OSError as error:  # a file that is not there or cannot be read
        _traceback_if_debug()
        CliError(f"{error.strerror or error}" + (f": {error.filename}" if error.filename else "")).show()
        return REFUSED
    except Exception as error:  # a bug: still one line, and --debug for the details
        if _run.debug:
            traceback.print_exc()
        click.echo(
            f"Error: unexpected {type(error).__name__}: {error}"
            + ("" if _run.debug else " (run again with --debug for the traceback)"),
            err=True,
        )
        return UNAVAILABLE


def clean(text: str) -> str:
    """Pydantic's `Value error, ` prefix says nothing to a user."""
    return text.replace("Value error, ", "")


def _traceback_if_debug() -> None:
    if _run.debug:
        traceback.print_exc()


def _pipe_closed() -> int:
    """The reader went away (`| head`): end quietly. Python's documented recipe: point stdout at
    devnull so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's stream)
        pass
    return PIPE_CLOSED


def main(argv: list[str] | None = None) -> int:
    """The `governor` entry point ([project.scripts]) and `python -m cli`."""
    return int(governor.main(args=argv, prog_name="governor", standalone_mode=False))
