"""`governor policy ...`: marketing ops' contact limits from the command line, over the policy API.

A policy file may be partial: it is merged onto the version it changes (the current one, or
--based-on N), deep: objects merge key by key, lists (cap lists, overrides) and values replace the
version's whole; never onto the built-in default. What the file left out is named ("merged onto
version N; kept from it: ..."). Problems are shown at their line in the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import click

from cli import policy_file
from cli.api import Api, ApiError
from cli.context import (
    CONFLICT,
    OK,
    REFUSED,
    UNAVAILABLE,
    USAGE,
    CliError,
    Settings,
    info,
    pass_settings,
    plain_table,
    render,
    stderr_console,
)
from cli.policy_file import PolicyFile, PolicyFileError, Problem

MERGE_HELP = (
    "A partial FILE is merged onto the version it changes (the current one, or --based-on N), deep: "
    "objects merge key by key; lists (cap lists, overrides) and values replace the version's whole. "
    "The output names what was kept from that version. JSON or YAML (.yaml/.yml)."
)


def _api(settings: Settings) -> Api:
    api = settings.api()
    api.author = click.get_current_context().meta.get("governor.author")
    return api


@click.group(name="policy")
@click.option(
    "--author", envvar="GOVERNOR_AUTHOR", metavar="NAME", help="Locally, who is acting (deployed: your IAM identity)."
)
@click.pass_context
def policy(ctx: click.Context, author: str | None) -> None:
    """Show, edit, validate, simulate, apply and roll back contact policies.

    Policy files are JSON or YAML. A partial file is merged onto the version it changes (the current
    one, or --based-on N), deep: objects merge key by key; lists (cap lists, overrides) and values
    replace that version's whole. It is never merged onto the built-in default.
    """
    ctx.meta["governor.author"] = author


# ---- reading versions and files ---------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    version: int
    document: dict[str, Any]
    author: str
    created_at: str
    comment: str
    kind: str

    @property
    def said(self) -> str:
        return f"version {self.version} ({self.kind}) by {self.author} at {self.created_at}: {self.comment!r}"


def fetch(api: Api, version: int | None = None) -> Version:
    body, _ = api.call("GET", "/policy" if version is None else f"/policy/versions/{version}")
    return Version(
        body["version"], body["policy"], body["author"], body["created_at"], body.get("comment", ""), body["kind"]
    )


STDIN = "-"
STDIN_NAME = "<stdin>"


def read(path: Path) -> PolicyFile:
    """A policy file, or standard input for `-` (`policy show --raw | governor policy validate -`)."""
    if str(path) == STDIN:
        text = sys.stdin.read()
        # No file name to go by: JSON when it looks like JSON, else YAML (which JSON also parses as,
        # but with poorer line numbers).
        kind: policy_file.Kind = "json" if text.lstrip().startswith(("{", "[")) or not text.strip() else "yaml"
        try:
            return policy_file.parse(text, STDIN_NAME, kind)
        except PolicyFileError as error:
            raise CliError(str(error)) from None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory, not a policy file") from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not a text file (UTF-8)") from None
    except OSError as error:
        raise CliError(f"{path}: {error.strerror or error}") from None
    try:
        return policy_file.parse(text, str(path))
    except PolicyFileError as error:
        raise CliError(str(error)) from None


@dataclass(frozen=True)
class Candidate:
    """A policy file merged onto the version it changes: what is sent, and what the file left out."""

    file: PolicyFile
    base: Version
    document: dict[str, Any]
    kept: list[str] = field(default_factory=list)

    @property
    def note(self) -> str | None:
        if not self.kept:
            return None
        return (
            f"merged onto version {self.base.version}; kept from it (not in {self.file.name}): {', '.join(self.kept)}"
        )


def candidate(api: Api, file: PolicyFile, based_on: int | None = None) -> Candidate:
    base = fetch(api, based_on)
    document, kept = policy_file.merge(base.document, file.document)
    return Candidate(file, base, document, kept)


def refused(file: PolicyFile, reported: list[dict[str, str]], what: str = "nothing was changed") -> CliError:
    found = policy_file.problems(file, reported)
    lines = [f"{file.name}: {len(found)} problem(s); {what}", *(f"  {p.located(file.name)}" for p in found)]
    return CliError("\n".join(lines), REFUSED)


def problems_of(error: ApiError) -> list[dict[str, str]] | None:
    """The problems by path of a 400 that refused the policy document, else None."""
    fields = error.body.get("fields") or []
    if error.status != 400 or not any(str(f.get("field", "")).startswith("policy.") for f in fields):
        return None
    return [f for f in fields if isinstance(f, dict)]


def changes_table(diff: list[dict[str, Any]]) -> str:
    if not diff:
        return "no changes"
    rows = [[d["path"], json.dumps(d["before"]), json.dumps(d["after"])] for d in diff]
    return plain_table(rows, ["rule", "before", "after"])


def json_output(settings: Settings) -> bool:
    return settings.output in ("json", "ndjson")


def echo_json(value: Any, settings: Settings) -> None:
    click.echo(json.dumps(value, indent=None if settings.output == "ndjson" else 2, default=str))


def header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


# ---- show ---------------------------------------------------------------------------------------


@policy.command()
@click.option("--version", "version", type=click.IntRange(min=0), help="An older version instead of the current one.")
@click.option(
    "--raw",
    is_flag=True,
    help="Print the policy document alone, as `validate`, `diff`, `apply` and `edit` take it (JSON).",
)
@click.option("--json", "as_json", is_flag=True, hidden=True, help="The same as --output json.")
@pass_settings
def show(settings: Settings, version: int | None, raw: bool, as_json: bool) -> None:
    """The current policy (or --version N): its rules, who made it, when and why."""
    body, _ = _api(settings).call("GET", "/policy" if version is None else f"/policy/versions/{version}")
    if raw:
        click.echo(json.dumps(body["policy"], indent=2))
        return
    if as_json or json_output(settings):
        echo_json(body, settings)
        return
    title = f"version {body['version']} ({body['kind']}) by {body['author']} at {body['created_at']}: {body['comment']}"
    rows = [{"rule": path, "value": value} for path, value in flatten(body["policy"])]
    render(settings, rows, [("rule", "rule"), ("value", "value")], title=title)


def flatten(document: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Each rule by path (objects opened, lists and values as JSON): one row per rule."""
    if isinstance(document, dict) and document:
        return [row for key, value in document.items() for row in flatten(value, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), json.dumps(document, separators=(", ", ": ")))]


# ---- validate, diff ------------------------------------------------------------------------------


def file_argument(function: Any) -> Any:
    # `-` reads standard input.
    return click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))(function)


def based_on_option(function: Any) -> Any:
    return click.option(
        "--based-on",
        type=click.IntRange(min=0),
        help="Merge onto this version and refuse if it is not current (default: the current one).",
    )(function)


def check(api: Api, wanted: Candidate) -> dict[str, Any]:
    answer, _ = api.call("POST", "/policy/validate", {"policy": wanted.document})
    return dict(answer)


@policy.command(epilog=MERGE_HELP)
@file_argument
@based_on_option
@pass_settings
def validate(settings: Settings, file: Path, based_on: int | None) -> int:
    """Check a policy file: every problem by its line and path; exit 1 if any."""
    api = _api(settings)
    wanted = candidate(api, read(file), based_on)
    answer = check(api, wanted)
    found = policy_file.problems(wanted.file, answer["problems"]) if not answer["valid"] else []
    if json_output(settings):
        echo_json(
            {
                "file": wanted.file.name,
                "valid": answer["valid"],
                "problems": [p.as_json() for p in found],
                "merged_onto": wanted.base.version,
                "kept": wanted.kept,
            },
            settings,
        )
    elif answer["valid"]:
        click.echo(f"{wanted.file.name}: valid" + (f" ({wanted.note})" if wanted.note else ""))
    else:
        click.echo(f"{wanted.file.name}: {len(found)} problem(s)")
        for problem in found:
            click.echo(f"  {problem.located(wanted.file.name)}")
    return OK if answer["valid"] else REFUSED


@policy.command(epilog=MERGE_HELP)
@file_argument
@based_on_option
@pass_settings
def diff(settings: Settings, file: Path, based_on: int | None) -> None:
    """What a policy file would change in the current version."""
    api = _api(settings)
    wanted = candidate(api, read(file), based_on)
    answer = check(api, wanted)
    if not answer["valid"]:
        raise refused(wanted.file, answer["problems"], "nothing to compare")
    if json_output(settings):
        echo_json({"merged_onto": wanted.base.version, "kept": wanted.kept, "diff": answer["diff"]}, settings)
        return
    if wanted.note:
        click.echo(wanted.note)
    click.echo(changes_table(answer["diff"]))


# ---- apply, rollback, edit -----------------------------------------------------------------------


def put(api: Api, document: dict[str, Any], comment: str, based_on: int) -> dict[str, Any]:
    body, _ = api.call("PUT", "/policy", {"policy": document, "comment": comment}, {"If-Match": f'"{based_on}"'})
    return dict(body)


def conflict(api: Api, based_on: int, file: PolicyFile, partial: bool) -> tuple[Version, Candidate, str]:
    """After a 412: the version now current, the file again against it (a partial file merged onto
    it anew), and what happened, said."""
    current = fetch(api)
    again = candidate(api, file) if partial else Candidate(file, current, file.document)
    answer = check(api, again)
    lines = [
        f"the policy changed since version {based_on}: {current.said} is current now",
        f"against version {current.version}, {file.name} would change:"
        if answer["valid"]
        else f"against version {current.version}, {file.name} is not valid",
    ]
    if answer["valid"]:
        if again.note:
            lines.append(again.note)
        lines.append(changes_table(answer["diff"]))
    else:
        lines += [f"  {p.located(file.name)}" for p in policy_file.problems(file, answer["problems"])]
    return current, again, "\n".join(lines)


def applied(body: dict[str, Any], based_on: int, settings: Settings) -> None:
    if json_output(settings):
        echo_json(body, settings)
        return
    click.echo(f"version {body['version']} is current (based on {based_on})")
    click.echo(changes_table(body["diff"]))


@policy.command(epilog=MERGE_HELP)
@file_argument
@click.option("-m", "--message", required=True, help="Why (kept in the history).")
@based_on_option
@pass_settings
def apply(settings: Settings, file: Path, message: str, based_on: int | None) -> None:
    """Make a policy file the current policy; exit 3 if someone changed it meanwhile."""
    api = _api(settings)
    wanted = candidate(api, read(file), based_on)
    if wanted.note:
        info(wanted.note)
    try:
        body = put(api, wanted.document, message, wanted.base.version)
    except ApiError as error:
        reported = problems_of(error)
        if reported is not None:
            raise refused(wanted.file, reported) from None
        if error.status == 412:
            _, _, said = conflict(api, wanted.base.version, wanted.file, partial=bool(wanted.kept))
            raise CliError(
                f"412 PRECONDITION_FAILED: nothing was applied\n{said}",
                CONFLICT,
                hint="review the changes above, then apply again (without --based-on, onto the current version)",
            ) from None
        raise
    applied(body, wanted.base.version, settings)


@policy.command()
@click.argument("version", type=click.IntRange(min=0))
@click.option("-m", "--message", default="", help="Why (kept in the history).")
@click.option("--based-on", type=click.IntRange(min=0), help="Refuse if the current version is not this one.")
@pass_settings
def rollback(settings: Settings, version: int, message: str, based_on: int | None) -> None:
    """Make version N current again, as a new version."""
    api = _api(settings)
    if based_on is None:
        based_on = fetch(api).version
    body, _ = api.call(
        "POST", "/policy/rollback", {"version": version, "comment": message}, {"If-Match": f'"{based_on}"'}
    )
    if json_output(settings):
        echo_json(body, settings)
        return
    click.echo(f"version {body['version']} is current: the rules of version {version} again")
    click.echo(changes_table(body["diff"]))


def editor_command() -> str:
    """The editor as git chooses it: $VISUAL, then $EDITOR, then vi."""
    return os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"


def run_editor(path: Path) -> None:
    editor = editor_command()
    # Through the shell, as git runs it, so EDITOR="code --wait" or a quoted path works.
    done = subprocess.run([f'{editor} "$@"', editor, str(path)], shell=True, check=False)  # noqa: S602
    if done.returncode != 0:
        raise CliError(f"the editor ({editor}) exited with {done.returncode}: nothing was applied")


def dump(document: dict[str, Any], kind: policy_file.Kind) -> str:
    if kind == "yaml":
        import yaml

        return str(yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=100))
    return json.dumps(document, indent=2) + "\n"


@dataclass
class Edit:
    """One `governor policy edit` session: the temp file, the version it started from."""

    api: Api
    path: Path
    kind: policy_file.Kind
    base: Version

    def until_valid(self) -> tuple[PolicyFile, list[dict[str, Any]]]:
        """Opens the editor until the file is valid; after each save with problems, the file comes
        back with them listed at the top (at their lines). Returns the file and its diff."""
        shown = None
        while True:
            run_editor(self.path)
            body = policy_file.body_of(self.path.read_text(encoding="utf-8"), self.kind)
            if not body.strip():
                raise CliError("the file was emptied: nothing was applied")
            if body == shown:
                raise CliError(f"{self.path} was saved with its problems unchanged: nothing was applied")
            found: list[Problem]
            try:
                file = policy_file.parse(body, self.path.name, self.kind)
            except PolicyFileError as error:
                found = [Problem((), error.message, error.line)]
            else:
                answer = self.api.call("POST", "/policy/validate", {"policy": file.document})[0]
                if answer["valid"]:
                    return file, list(answer["diff"])
                found = policy_file.problems(file, answer["problems"])
            for problem in found:
                info(problem.located(self.path.name))
            info(f"{len(found)} problem(s): reopening the editor with them marked at the top")
            self.path.write_text(policy_file.with_header(body, self.kind, found, self.path.name), encoding="utf-8")
            shown = body


@policy.command()
@click.option("-m", "--message", help="Why (kept in the history); asked for when not given.")
@click.option("--yes", "-y", is_flag=True, help="Apply without asking (for scripts).")
@click.option(
    "--format",
    "kind",
    type=click.Choice(["json", "yaml"]),
    default="json",
    show_default=True,
    help="The format of the file the editor opens.",
)
@pass_settings
def edit(settings: Settings, message: str | None, yes: bool, kind: policy_file.Kind) -> int:
    """Edit the current policy in $VISUAL / $EDITOR, then validate, diff and apply it.

    The editor opens the current version's document. On save it is validated; with problems it
    reopens with them listed at the top (at their lines; the block is removed before reading).
    Empty the file to abort. Then the changes are shown and, once confirmed (--yes for scripts),
    applied with If-Match of the version the edit started from: if someone applied another
    version meanwhile, nothing is applied, and the changes against theirs are shown.
    """
    if yes and not message:
        raise CliError("--yes needs -m/--message: the history keeps why", USAGE)
    api = _api(settings)
    base = fetch(api)
    with tempfile.TemporaryDirectory(prefix="governor-policy-") as folder:
        path = Path(folder) / f"policy-v{base.version}.{kind}"
        path.write_text(dump(base.document, kind), encoding="utf-8")
        file, changes = Edit(api, path, kind, base).until_valid()
    if not changes:
        info(f"no changes to version {base.version}: nothing was applied")
        return OK
    click.echo(f"changes to version {base.version}:")
    click.echo(changes_table(changes))
    based_on = base.version
    while True:
        if not yes:
            click.confirm(f"apply these as a new version (based on version {based_on})?", abort=True, err=True)
        if not message:
            message = str(click.prompt("why (kept in the history)", err=True))
        try:
            body = put(api, file.document, message, based_on)
        except ApiError as error:
            if error.status != 412:
                raise
            current, _, said = conflict(api, based_on, file, partial=False)
            if yes:
                raise CliError(
                    f"412 PRECONDITION_FAILED: nothing was applied\n{said}",
                    CONFLICT,
                    hint="run `governor policy edit` again to edit from the current version",
                ) from None
            info(said)
            based_on = current.version
            continue
        applied(body, based_on, settings)
        return OK


# ---- simulate ------------------------------------------------------------------------------------


@policy.command(epilog=MERGE_HELP)
@file_argument
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Up to 90; with --job up to the retention.",
)
@click.option("--json", "as_json", is_flag=True, hidden=True, help="The same as --output json.")
@click.option("--job", is_flag=True, help="Run as a job (any window), with its progress on stderr.")
@click.option("--no-wait", is_flag=True, help="With --job: print the job id and return.")
@click.option("--poll", type=click.FloatRange(min=0.05), default=1.0, show_default=True, help="With --job: seconds.")
@click.option("--timeout", type=click.FloatRange(min=1), default=3600.0, show_default=True, help="With --job: seconds.")
@based_on_option
@pass_settings
def simulate(  # noqa: PLR0917 - click passes each option
    settings: Settings,
    file: Path,
    days: int,
    as_json: bool,
    job: bool,
    no_wait: bool,
    poll: float,
    timeout: float,
    based_on: int | None,
) -> int:
    """Replay recent logged events under the current policy and the file's."""
    api = _api(settings)
    wanted = candidate(api, read(file), based_on)
    if wanted.note:
        info(wanted.note)
    json_out = as_json or json_output(settings)
    try:
        if job:
            return simulate_job(
                api, wanted.document, days, json_out=json_out, no_wait=no_wait, poll=poll, timeout=timeout
            )
        body, _ = api.call("POST", "/policy/simulate", {"policy": wanted.document, "days": days})
    except ApiError as error:
        reported = problems_of(error)
        if reported is not None:
            raise refused(wanted.file, reported, "nothing was simulated") from None
        raise
    return report(body, json_out)


def simulate_job(
    api: Api, document: dict[str, Any], days: int, *, json_out: bool, no_wait: bool, poll: float, timeout: float
) -> int:
    """Any window up to the log's retention, as a job: started, followed with its progress on
    stderr (the estimate as soon as it is known), then answered as `simulate` answers."""
    # One key per command: a start the network lost and the client retried names the same job.
    key = f"cli-{uuid.uuid4().hex}"
    started, _ = api.call("POST", "/policy/simulations", {"policy": document, "days": days}, {"Idempotency-Key": key})
    info(f"simulation job {started['job_id']} started")
    if no_wait:
        click.echo(json.dumps(started) if json_out else started["job_id"])
        return OK
    deadline = time.monotonic() + timeout
    with progress_display() as progress:
        while True:
            job, _ = api.call("GET", started["status_url"])
            progress.show(job)
            if job["status"] != "running":
                break
            if time.monotonic() > deadline:
                progress.end()
                raise CliError(
                    f"simulation job {job['job_id']} still running after {timeout:.0f} s",
                    UNAVAILABLE,
                    hint=f"its status: GET {started['status_url']}",
                )
            time.sleep(poll)
    if job["status"] == "failed":
        error = job.get("error") or {}
        raise CliError(
            f"simulation job {job['job_id']} failed: {error.get('error')}: {error.get('message')}", UNAVAILABLE
        )
    return report(job["result"], json_out)


def progress_line(job: dict[str, Any]) -> str:
    done, total = job["progress"]["partitions_done"], job["progress"]["partitions"]
    line = f"{done}/{total} partitions, {job['progress']['events_replayed']} events replayed"
    estimate = job.get("estimate")
    if estimate and job["status"] == "running":
        share = estimate["estimate"]["share_of_customers"]
        line += f"; estimate from {share:.0%} of customers: {estimate['changed_events']} events would change"
    return line


class PlainProgress:
    """Not a terminal: one line on stderr each time the progress changes (a log reads well)."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.last = out, ""

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *_: object) -> None:
        self.end()

    def show(self, job: dict[str, Any]) -> None:
        line = progress_line(job)
        if line != self.last:
            self.last = line
            self.out.write(f"simulation: {line}\n")
            self.out.flush()

    def end(self) -> None:
        pass


class RichProgress:
    """A terminal: a Rich progress bar over the partitions on stderr, with the estimate in its text."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("simulation"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=stderr_console(),
        )
        self.task = self.progress.add_task("", total=None)

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.end()

    def show(self, job: dict[str, Any]) -> None:
        done, total = job["progress"]["partitions_done"], job["progress"]["partitions"]
        text = progress_line(job).split(", ", 1)[1]
        self.progress.update(self.task, completed=done, total=total or None, description=text)

    def end(self) -> None:
        self.progress.stop()


def progress_display() -> PlainProgress | RichProgress:
    # sys.stderr as it is now (a test runner swaps it), not the one at import.
    return RichProgress() if sys.stderr.isatty() else PlainProgress(sys.stderr)


def report(body: dict[str, Any], json_out: bool) -> int:
    if json_out:
        click.echo(json.dumps(body, indent=2))
        return OK
    click.echo(f"{body['events']} logged events of the last {body['days']} days replayed in {body['seconds']:.1f} s")
    log = body.get("log")
    if log:
        span = f" ({log['first_day']} to {log['last_day']})" if log["first_day"] else ""
        click.echo(
            f"the log has decisions on {log['days_with_decisions']} of the window's {log['window_days']} days{span}"
        )
    for warning in body.get("warnings", []):
        info(f"WARNING: {warning}")
    current, candidate_, delta = body["current"], body["candidate"], body["difference"]
    rows = []
    for group, label in (("by_action", "action"), ("by_reason", "reason")):
        for key in sorted(delta[group]):
            rows.append(
                [
                    label,
                    key,
                    str(current[group].get(key, 0)),
                    str(candidate_[group].get(key, 0)),
                    f"{delta[group][key]:+d}",
                ]
            )
    for key in ("released", "cancelled"):
        rows.append(
            ["follow-ups", key, str(current[key]), str(candidate_[key]), f"{candidate_[key] - current[key]:+d}"]
        )
    for reason in sorted(set(current["cancelled_by_reason"]) | set(candidate_["cancelled_by_reason"])):
        before, after = current["cancelled_by_reason"].get(reason, 0), candidate_["cancelled_by_reason"].get(reason, 0)
        rows.append(["cancelled", reason, str(before), str(after), f"{after - before:+d}"])
    click.echo(plain_table(rows, ["", "", f"current (v{current['version']})", "candidate", "change"]))
    click.echo(
        f"(supersession, freshness, cooldown and fatigue applied; {candidate_['outcomes_applied']} logged outcomes "
        "of follow-ups the candidate would have sent)"
    )
    for line in body.get("current_vs_logged", {}).get("explanations", []):
        click.echo(f"current policy against the log: {line}")
    click.echo(f"\n{body['changed_events']} events would be decided differently")
    for customer in body["changed_customers_sample"]:
        for event in customer["events"]:
            click.echo(
                f"  {customer['customer_id']}  {event['event_id']}  "
                f"{event['current']['action']}/{event['current']['reason']} -> "
                f"{event['candidate']['action']}/{event['candidate']['reason']}"
            )
    return OK


# ---- history -------------------------------------------------------------------------------------


@policy.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Versions to show.")
@click.option("--next-token", help="Continue a listing where it stopped.")
@pass_settings
def history(settings: Settings, limit: int, next_token: str | None) -> None:
    """Every version, newest first (pages through the API until --limit)."""
    api = _api(settings)
    items: list[dict[str, Any]] = []
    token = next_token
    while len(items) < limit:
        body, _ = api.call(
            "GET", "/policy/versions", query={"limit": min(100, limit - len(items)), "next_token": token}
        )
        items += body["items"]
        token = body.get("next_token")
        if not token:
            break
    rows = [
        {**v, "created_at": v["created_at"][:19], "changed": ", ".join(d["path"] for d in v["diff"])} for v in items
    ]
    more = None
    if token:
        oldest = items[-1]["version"] if items else 0
        more = (
            f"{oldest} older version(s) not shown: governor policy history --limit {limit} --next-token {token}"
            if oldest
            else None
        )
    render(
        settings,
        rows,
        [
            ("version", "version"),
            ("kind", "kind"),
            ("created_at", "at (UTC)"),
            ("author", "author"),
            ("comment", "comment"),
            ("changed", "changed"),
        ],
        more=more,
    )
