"""Admin commands: answer "why did (or didn't) this customer get a follow-up?" in a minute.

Ranges take human inputs (`--since 7d`, `--from yesterday --to today`, dates, times) and any length:
the CLI splits what one request cannot hold (31 days of decisions, 366 days of stats) into chunks,
newest first. Listings page through everything with `--all`, or show `--limit` and say how many
more there are and the exact command that continues.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import shlex
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from cli.api import Api, segment
from cli.context import REFUSED, Settings, info, pass_settings, render
from shared.domain.decision import Action, Reason, State

F = TypeVar("F", bound=Callable[..., Any])

DECISION_RANGE = timedelta(days=31)  # the admin API's longest range without a customer (inclusive bounds)
STATS_DAYS = 366  # the stats route's longest range, in days after the first
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # the log holds nothing older (the API refuses earlier bounds)
PAGE = 500  # the largest page GET /decisions serves
COUNT_AHEAD = 1000  # after a --limit, how many more decisions are counted before saying "more than"
TICK = timedelta(microseconds=1)  # decided_at's resolution: chunks meet without overlapping


# -- times -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class When:
    """A parsed time: an instant, or a whole UTC day (from its start, to its end)."""

    moment: datetime
    whole_day: bool = False
    text: str = field(default="", compare=False)  # as typed, for the command that continues a listing

    @property
    def start(self) -> datetime:
        return self.moment

    @property
    def end(self) -> datetime:
        return self.moment + timedelta(days=1) - TICK if self.whole_day else self.moment


RELATIVE = re.compile(r"(\d{1,6})\s*(w|d|h|m|min|weeks?|days?|hours?|minutes?)")
UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "min": "minutes"}
HOW = "use 7d, 36h, 30m, 2w, today, yesterday, now, a date (2026-11-01) or a UTC time (2026-11-01T09:00Z)"


def parse_when(text: str, now: datetime) -> When:
    """`7d` (ago), `36h`, `30m`, `2w`, `today`, `yesterday`, `now`, `2026-11-01`, `2026-11-01T09:00Z`
    (a time without an offset is UTC). ValueError with what to type otherwise."""
    return replace(_parse_when(text, now), text=text)


def _parse_when(text: str, now: datetime) -> When:
    word = text.strip().lower()
    midnight = datetime.combine(now.astimezone(UTC).date(), time.min, tzinfo=UTC)
    if word == "now":
        return When(now)
    if word == "today":
        return When(midnight, whole_day=True)
    if word == "yesterday":
        return When(midnight - timedelta(days=1), whole_day=True)
    relative = RELATIVE.fullmatch(word)
    if relative:
        unit = UNITS.get(relative[2]) or relative[2].rstrip("s") + "s"
        try:
            return When(now - timedelta(**{unit: int(relative[1])}))
        except OverflowError:
            raise ValueError(f"'{text}' reaches back before the year 1") from None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", word):
            return When(datetime.combine(date.fromisoformat(word), time.min, tzinfo=UTC), whole_day=True)
        parsed = datetime.fromisoformat(re.sub(r"z$", "+00:00", word))
    except ValueError:
        raise ValueError(f"'{text}' is not a time: {HOW}") from None
    return When(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


class WhenType(click.ParamType):  # type: ignore[type-arg]
    name = "WHEN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> When:
        if isinstance(value, When):
            return value
        try:
            return parse_when(str(value), datetime.now(UTC))
        except ValueError as error:
            self.fail(str(error), param, ctx)


WHEN = WhenType()


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # to the microsecond, like decided_at


def time_range(
    since: When | None, start: When | None, end: When | None, *, default_since: str | None = None
) -> tuple[datetime, datetime] | None:
    """The [first, last] instants a command's --since / --from / --to select (None: no range given)."""
    now = datetime.now(UTC)
    if since and start:
        raise click.UsageError("--since and --from both say where the range starts; give one")
    first = since or start
    if first is None and end is not None:
        raise click.UsageError("--to needs --from or --since")
    if first is None:
        if default_since is None:
            return None
        first = parse_when(default_since, now)
    last = end.end if end else now
    if first.start > last:
        raise click.BadParameter(
            f"the range starts ({stamp(first.start)}) after it ends ({stamp(last)}); swap them",
            param_hint="'--from' / '--to'",
        )
    # Nothing is decided before the service existed or after tomorrow: the API refuses such bounds,
    # and they select nothing, so they are narrowed rather than refused.
    return max(first.start, EARLIEST), min(last, now + timedelta(days=1))


def chunks(first: datetime, last: datetime, span: timedelta = DECISION_RANGE) -> Iterator[tuple[datetime, datetime]]:
    """[first, last] as consecutive ranges of at most `span`, newest first (how the API lists)."""
    end = last
    while end >= first:
        start = max(first, end - span)
        yield start, end
        end = start - TICK


def range_options(*, default_since: str | None = None) -> Callable[[F], F]:
    since_help = "Start of the range: 7d, 36h, yesterday, 2026-11-01, ... (ends now)"
    if default_since:
        since_help += f" [default: {default_since}]"

    def decorate(function: F) -> F:
        function = click.option("--to", "end", type=WHEN, help="End of the range (a date: its whole day).")(function)
        function = click.option("--from", "start", type=WHEN, help="Start of the range (a date: from its start).")(
            function
        )
        return click.option("--since", type=WHEN, help=since_help)(function)

    return decorate


# -- shared helpers --------------------------------------------------------------------------


REASONS = [reason.value for reason in Reason]
ACTIONS = [action.value for action in Action]
STATES = [state.value for state in State]


class CodeType(click.ParamType):  # type: ignore[type-arg]
    """A reason code in any case; an unknown one is refused listing the valid codes once, nearest first."""

    name = "CODE"

    def __init__(self, codes: list[str]) -> None:
        self.codes = codes

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        code = str(value).strip().upper()
        if code in self.codes:
            return code
        import difflib

        near = difflib.get_close_matches(code, self.codes, n=1, cutoff=0.6)
        guess = f"did you mean {near[0]}? " if near else ""
        self.fail(f"unknown reason '{value}'; {guess}valid codes: {', '.join(self.codes)}", param, ctx)


def json_flag(function: F) -> F:
    """`--json`, as the CLI had it: the same as `-o json`."""
    return click.option("--json", "as_json", is_flag=True, hidden=True)(function)


def with_output(settings: Settings, as_json: bool) -> Settings:
    if as_json:
        return replace(settings, output="json")
    return settings


def continuation(ctx: click.Context, settings: Settings, extra: list[str]) -> str:
    """The command as the user typed it (options given), plus `extra`: the exact command for the rest."""
    words = ["governor", str(ctx.info_name)]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or not param.name or not param.expose_value:
            continue
        if param.name in ("page_token", "limit", "show_all"):
            continue
        if ctx.get_parameter_source(param.name) not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        value = ctx.params.get(param.name)
        flag = max(param.opts, key=len)
        if param.is_flag:
            words += [flag] if value else []
        elif value is not None:
            words += [flag, value.text if isinstance(value, When) and value.text else str(value)]
    if settings.url_source == "--url":
        words += ["--url", settings.url]
    if settings.output != "table":
        words += ["-o", settings.output]
    return shlex.join([*words, *extra])


def encode_token(state: dict[str, Any]) -> str:
    """Where a listing stopped: the CLI's own position (base64 JSON) and the API's token (already URL-safe)."""
    own = {k: v for k, v in state.items() if k != "t"}
    text = base64.urlsafe_b64encode(json.dumps(own, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{text}.{state.get('t') or ''}"


def decode_token(token: str) -> dict[str, Any]:
    own, _, api_token = token.partition(".")
    try:
        state = json.loads(base64.urlsafe_b64decode(own + "=" * (-len(own) % 4)))
    except (ValueError, binascii.Error):
        state = None
    if not isinstance(state, dict):
        raise click.BadParameter("not a page token this command printed", param_hint="'--page-token'")
    return {**state, "t": api_token or None}


# -- decisions -------------------------------------------------------------------------------

DECISION_COLUMNS = [
    ("decided_at", "decided (UTC)"),
    ("customer_id", "customer"),
    ("action", "action"),
    ("reasons.0", "reason"),
    ("state", "state"),
    ("state_reason", "because"),
    ("send_at", "send at"),
    ("policy_version", "policy"),
    ("decision_id", "id"),
]


class Pager:
    """Decisions of one query across the API's pages and the CLI's chunks, with a resumable position."""

    def __init__(self, api: Api, query: dict[str, Any], ranges: list[tuple[datetime, datetime]] | None) -> None:
        self.api = api
        self.query = query
        self.ranges = ranges  # None: a customer's whole history, one API stream
        self.token: str | None = None
        self.done = False

    @classmethod
    def resume(cls, api: Api, query: dict[str, Any], state: dict[str, Any]) -> Pager:
        ranges = None
        if "s" in state:
            first = datetime.fromisoformat(state["b"])
            current = (datetime.fromisoformat(state["s"]), datetime.fromisoformat(state["e"]))
            ranges = [current, *chunks(first, current[0] - TICK)]
        # A customer's listing continues with the bounds it started with (the token is bound to them).
        pager = cls(api, {**query, "from": state.get("f"), "to": state.get("u")} if ranges is None else query, ranges)
        pager.token = state.get("t")
        return pager

    def position(self) -> str | None:
        """A --page-token that continues exactly here, or None when nothing is left."""
        if self.done:
            return None
        state: dict[str, Any] = {"t": self.token}
        if self.ranges is None and self.query.get("from"):
            state |= {"f": self.query["from"], "u": self.query["to"]}
        if self.ranges:
            start, end = self.ranges[0]
            state |= {"b": self.ranges[-1][0].isoformat(), "s": start.isoformat(), "e": end.isoformat()}
        return encode_token(state)

    def take(self, count: int) -> list[dict[str, Any]]:
        """Up to `count` more decisions, newest first."""
        found: list[dict[str, Any]] = []
        while len(found) < count and not self.done:
            query = {**self.query, "limit": min(PAGE, count - len(found)), "next_token": self.token}
            if self.ranges is not None:
                if not self.ranges:
                    self.done = True
                    break
                start, end = self.ranges[0]
                query |= {"from": stamp(start), "to": stamp(end)}
            body, _ = self.api.call("GET", "/decisions", query=query)
            found += body["items"]
            self.token = body.get("next_token")
            if not self.token:
                if self.ranges:
                    self.ranges.pop(0)
                self.done = not self.ranges
        return found


@click.command()
@click.option("--customer", help="One customer's decisions (any time; narrow with --since/--from/--to).")
@range_options()
@click.option("--action", "action_filter", type=click.Choice(ACTIONS), help="Only this action.")
@click.option("--reason", type=CodeType(REASONS), help="Only this deciding reason.")
@click.option("--state", type=click.Choice(STATES), help="Only this lifecycle state.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Show at most this many.")
@click.option("--all", "show_all", is_flag=True, help="Page through every matching decision.")
@click.option("--page-token", help="Continue where a previous listing stopped (it prints the command).")
@json_flag
@pass_settings
@click.pass_context
def decisions(
    ctx: click.Context,
    settings: Settings,
    *,
    customer: str | None,
    since: When | None,
    start: When | None,
    end: When | None,
    action_filter: str | None,
    reason: str | None,
    state: str | None,
    limit: int,
    show_all: bool,
    page_token: str | None,
    as_json: bool,
) -> None:
    """Decisions of a customer, or of a time range (any length: split into 31-day requests), newest first."""
    settings = with_output(settings, as_json)
    api = settings.api()
    query: dict[str, Any] = {
        "customer_id": customer,
        "action": action_filter,
        "reason": reason,
        "state": state,
    }
    bounds = time_range(since, start, end)
    if bounds is None and not customer:
        raise click.UsageError("give --customer, or a range: --since 7d, or --from 2026-11-01 [--to 2026-11-30]")
    if page_token:
        pager = Pager.resume(api, query, decode_token(page_token))
    elif customer:
        if bounds:
            query |= {"from": stamp(bounds[0]), "to": stamp(bounds[1])}
        pager = Pager(api, query, None)
    else:
        assert bounds is not None
        pager = Pager(api, query, list(chunks(*bounds)))
    if show_all:
        found = pager.take(10**12)
        render(settings, [shown(d, settings) for d in found], DECISION_COLUMNS)
        info(f"{len(found)} decision(s)")
        return
    found = pager.take(limit)
    token = pager.position()
    more = None
    if token:
        command = continuation(ctx, settings, ["--page-token", token])
        ahead = len(pager.take(COUNT_AHEAD))
        count = f"more than {COUNT_AHEAD}" if not pager.done else str(ahead)
        more = f"{count} more: {command}" if ahead else None
    render(settings, [shown(d, settings) for d in found], DECISION_COLUMNS, more=more)
    if not more:
        info(f"{len(found)} decision(s)")


def shown(decision: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """For a table, times to the second; every other format keeps the record as the API gave it."""
    if settings.output != "table":
        return decision
    return {
        **decision,
        "decided_at": (decision.get("decided_at") or "")[:19],
        "send_at": (decision.get("send_at") or "")[:16] or None,
        "policy_version": f"v{decision.get('policy_version')}",
    }


# -- one decision ----------------------------------------------------------------------------


LIFECYCLE_NOTES = {
    "pending": ", held until its send time, then re-checked and released or cancelled",
    "released": ", handed to the sending systems",
    "suppressed": ", no follow-up",
    "SUPERSEDED_BY_NEWER_INTERACTION": ": a newer interaction of the customer closed before it went out",
    "OPTED_OUT": ": the customer opted out before it went out",
    "EXPIRED": ": it would have gone out past the policy's freshness limit",
    "POLICY_FORBIDS": ": the current policy no longer allows it",
}


def lifecycle(d: dict[str, Any]) -> str:
    """The state, and for a cancellation why: `cancelled (EXPIRED)`."""
    state = str(d.get("state") or "")
    return f"{state} ({d['state_reason']})" if d.get("state_reason") else state


def lifecycle_note(d: dict[str, Any]) -> str:
    return LIFECYCLE_NOTES.get(str(d.get("state_reason") or d.get("state")), "")


def one(settings: Settings, record: dict[str, Any], columns: list[tuple[str, str]]) -> bool:
    """A single record in a machine format (json: the object itself). False: print it for people."""
    if settings.output == "json":
        click.echo(json.dumps(record, indent=2))
    elif settings.output in ("ndjson", "csv"):
        render(settings, [record], columns)
    else:
        return False
    return True


@click.command()
@click.argument("decision_id")
@json_flag
@pass_settings
def why(settings: Settings, decision_id: str, as_json: bool) -> None:
    """One decision, rule by rule: what the engine saw, what each rule said, what happened since."""
    settings = with_output(settings, as_json)
    d, _ = settings.api().call("GET", f"/decisions/{segment(decision_id)}")
    if one(settings, d, DECISION_COLUMNS):
        return
    echo = click.echo
    echo(
        f"{d['decision_id']}: {d['action'].upper()} for customer {d['customer_id']} "
        f"(event {d['event_id']}, interaction {d['interaction_id']})"
    )
    echo(
        f"decided {d['decided_at']} under policy v{d['policy_version']} ({d['policy_scope']})"
        + (f", send at {d['send_at']}" if d["send_at"] else "")
    )
    echo(f"reasons: {', '.join(d['reasons'])}")
    echo(f"state: {lifecycle(d)} since {d.get('state_changed_at')}" + lifecycle_note(d))
    if d.get("supersedes"):
        echo(f"cancelled on deciding (superseded): {', '.join(d['supersedes'])}")
    facts = d["input"]
    echo("input: " + ", ".join(f"{k}={v}" for k, v in facts.items() if v is not None))
    rules = [{"ok": "ok" if c["passed"] else "NO", **c} for c in d["explanation"]]
    render(settings, rules, [("ok", ""), ("rule", "rule"), ("message", "explanation")])


# -- a customer ------------------------------------------------------------------------------


def never_seen(state: dict[str, Any]) -> bool:
    """The API says so (`known: false`), or nothing about the customer exists at all."""
    if "known" in state:
        return state["known"] is False
    return not (state.get("last_entries") or state.get("opt_outs") or state.get("pending_follow_ups"))


@click.command()
@click.argument("customer_id")
@json_flag
@pass_settings
def customer(settings: Settings, *, customer_id: str, as_json: bool) -> int | None:
    """A customer's contact windows, next allowed times, opt-outs, pending follow-ups and history.
    Exit 1 when the governor has never seen the id."""
    settings = with_output(settings, as_json)
    state, _ = settings.api().call("GET", f"/customers/{segment(customer_id)}/contact-state")
    if never_seen(state):
        if settings.output != "table":
            one(settings, state, [("customer_id", "customer"), ("as_of", "as of")])
        info(
            f"the governor has never seen customer {customer_id}: no decisions, no opt-outs, no follow-ups "
            "(check the id; ids are case-sensitive)"
        )
        return REFUSED
    if one(
        settings,
        state,
        [
            ("customer_id", "customer"),
            ("as_of", "as of"),
            ("next_survey_allowed", "next survey"),
            ("next_callback_allowed", "next callback"),
        ],
    ):
        return None
    echo = click.echo
    echo(f"customer {state['customer_id']} as of {state['as_of']} (policy v{state['policy_version']})")
    echo(f"next survey allowed:   {state['next_survey_allowed'] or 'never (opted out or no capacity)'}")
    echo(f"next callback allowed: {state['next_callback_allowed'] or 'never (opted out or no capacity)'}")
    for opt_out in state["opt_outs"]:
        echo(f"opted out of {opt_out['kind']} since {opt_out['at']} ({opt_out['source']})")
    windows = [{**w, "used": f"{w['count']}/{w['cap']}"} for w in state["windows"]]
    render(
        settings, windows, [("kind", "kind"), ("window", "window"), ("used", "used"), ("next_allowed", "next allowed")]
    )
    follow_up_record(settings, state)
    entries = [
        {
            "when": e.get("decided_at", e.get("at", ""))[:19],
            "action": e.get("action", ""),
            "reason": (e.get("reasons") or [e.get("record_type", "")])[0],
            "state": lifecycle(e) if "decision_id" in e else "",
            "who": e.get("decision_id", e.get("actor", "")),
        }
        for e in state["last_entries"]
    ]
    render(
        settings,
        entries,
        [
            ("when", "when (UTC)"),
            ("action", "action"),
            ("reason", "reason"),
            ("state", "state"),
            ("who", "decision / actor"),
        ],
    )
    return None


def follow_up_record(settings: Settings, state: dict[str, Any]) -> None:
    """Held follow-ups, the survey response/ignore record and any cooldown or fatigue pause."""
    echo = click.echo
    pending = state.get("pending_follow_ups") or []
    if pending:
        rows = [{**p, "send_at": p["send_at"][:19]} for p in pending]
        render(settings, rows, [("kind", "pending"), ("send_at", "send at (UTC)"), ("decision_id", "decision")])
    else:
        echo("no follow-up pending")
    record = state.get("survey_record") or {}
    if record:
        echo(
            f"surveys: {record['responses']} answered"
            + (f" (last {record['last_response'][:16]})" if record.get("last_response") else "")
            + f", {record['ignored_in_a_row']} ignored in a row (a pause after {record['ignored_threshold']})"
        )
        if record.get("cooldown_until"):
            echo(f"no survey until {record['cooldown_until'][:16]}: cooldown after a response")
        if record.get("fatigue_until"):
            echo(f"no survey until {record['fatigue_until'][:16]}: survey fatigue (ignored in a row)")


@click.command("opt-out")
@click.argument("customer_id")
@click.option("--kind", type=click.Choice(["survey", "callback", "all"]), required=True)
@click.option("--source", default="governor cli", show_default=True, help="Where the wish came from.")
@click.option("--undo", is_flag=True, help="Lift the opt-out instead.")
@click.option("--author", help="Locally, who is acting (deployed, your IAM identity is recorded).")
@pass_settings
def opt_out(settings: Settings, *, customer_id: str, kind: str, source: str, undo: bool, author: str | None) -> None:
    """Record (or --undo) a customer's opt-out of surveys, callbacks or all follow-ups."""
    api = settings.api()
    api.author = author
    body, _ = api.call("PUT", f"/customers/{segment(customer_id)}/preferences", {kind: not undo, "source": source})
    if one(settings, body, [("customer_id", "customer"), ("opt_outs", "opt-outs")]):
        return
    kinds = ", ".join(f"{o['kind']} ({o['source']})" for o in body["opt_outs"]) or "none"
    click.echo(f"customer {customer_id} opt-outs: {kinds}")


# -- stats -----------------------------------------------------------------------------------


def merge_totals(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The totals of consecutive ranges as one: counts add up; the rate is recomputed from them."""
    merged: dict[str, Any] = {"day": f"{parts[-1]['day'].split('..')[0]}..{parts[0]['day'].split('..')[-1]}"}
    for key in ("total", "released", "cancelled"):
        merged[key] = sum(int(p.get(key) or 0) for p in parts)
    for key in ("by_action", "by_reason", "released_by_action", "cancelled_by_reason"):
        counts: Counter[str] = Counter()
        for part in parts:
            counts.update(part.get(key) or {})
        merged[key] = dict(sorted(counts.items()))
    none = merged["by_action"].get("none", 0)
    merged["suppression_rate"] = round(none / merged["total"], 4) if merged["total"] else None
    return merged


@click.command()
@range_options(default_since="30d")
@json_flag
@pass_settings
def stats(settings: Settings, *, since: When | None, start: When | None, end: When | None, as_json: bool) -> None:
    """Decisions per UTC day by action and reason, with follow-ups released and cancelled (any range:
    split into 366-day requests)."""
    settings = with_output(settings, as_json)
    bounds = time_range(since, start, end, default_since="30d")
    assert bounds is not None
    first, last = bounds[0].date(), bounds[1].date()
    api = settings.api()
    days: list[dict[str, Any]] = []
    totals: list[dict[str, Any]] = []
    chunk_end = last
    while chunk_end >= first:
        chunk_start = max(first, chunk_end - timedelta(days=STATS_DAYS - 1))
        body, _ = api.call("GET", "/stats", query={"from": f"{chunk_start}", "to": f"{chunk_end}"})
        days = body["days"] + days
        totals.append(body["total"])
        chunk_end = chunk_start - timedelta(days=1)
    total = totals[0] if len(totals) == 1 else merge_totals(totals)
    report = {"days": days, "total": total}
    if settings.output == "json":
        click.echo(json.dumps(report, indent=2))
        return
    rows = [
        {
            **d,
            **{a: d["by_action"].get(a, 0) for a in ACTIONS},
            "suppressed": f"{d['suppression_rate']:.1%}" if d["suppression_rate"] is not None else None,
        }
        for d in days
    ]
    columns = [("day", "day"), ("total", "total"), *((a, a) for a in ACTIONS), ("suppressed", "suppressed")]
    if settings.output != "table":
        render(settings, rows, columns)
        return
    render(settings, rows, columns)
    rate = f"{total['suppression_rate']:.1%}" if total["suppression_rate"] is not None else "-"
    click.echo(f"\n{total['total']} decisions, suppression rate {rate}")
    by_reason = sorted(total["by_reason"].items(), key=lambda kv: -kv[1])
    render(settings, [{"reason": k, "count": v} for k, v in by_reason], [("reason", "reason"), ("count", "count")])
    click.echo(f"\n{total['released']} follow-ups released, {total['cancelled']} cancelled")
    cancelled = sorted(total["cancelled_by_reason"].items(), key=lambda kv: -kv[1])
    if cancelled:
        render(
            settings,
            [{"reason": k, "count": v} for k, v in cancelled],
            [("reason", "cancelled because"), ("count", "count")],
        )


# -- export ----------------------------------------------------------------------------------


@click.command()
@range_options()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ndjson", "csv"]),
    help="[default: csv with -o csv, else ndjson]",
)
@click.option("--action", "action_filter", type=click.Choice(ACTIONS), help="Only this action.")
@click.option("--reason", type=CodeType(REASONS), help="Only this deciding reason.")
@pass_settings
def export(
    settings: Settings,
    *,
    since: When | None,
    start: When | None,
    end: When | None,
    fmt: str | None,
    action_filter: str | None,
    reason: str | None,
) -> None:
    """Every decision of a range, newest first, as NDJSON or CSV (one header) to stdout. Any length:
    streamed across 31-day requests and their pages."""
    bounds = time_range(since, start, end)
    if bounds is None:
        raise click.UsageError("give a range: --since 30d, or --from 2026-11-01 [--to 2026-11-30]")
    fmt = fmt or ("csv" if settings.output == "csv" else "ndjson")
    api = settings.api()
    stdout = sys.stdout
    header_written = False
    for first, last in chunks(*bounds):
        query: dict[str, Any] = {
            "from": stamp(first),
            "to": stamp(last),
            "format": fmt,
            "action": action_filter,
            "reason": reason,
        }
        page = 0
        while True:
            pieces, headers = api.stream("GET", "/decisions/export", query=query)
            skip_header = fmt == "csv" and page == 0 and header_written
            for piece in without_first_line(pieces) if skip_header else pieces:
                stdout.write(piece)
            header_written = header_written or (fmt == "csv" and page == 0)
            stdout.flush()
            token = headers.get("X-Next-Token") or headers.get("x-next-token")
            if not token:
                break
            query["next_token"] = token
            page += 1


def without_first_line(pieces: Iterator[str]) -> Iterator[str]:
    """A later chunk's CSV without its header row (the first chunk's header heads the whole file)."""
    skipping = True
    for piece in pieces:
        if skipping:
            newline = piece.find("\n")
            if newline < 0:
                continue
            skipping = False
            if piece[newline + 1 :]:
                yield piece[newline + 1 :]
        elif piece:
            yield piece
