"""Admin commands: answer "why did (or didn't) this customer get a follow-up?" in a minute."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from cli.api import OK, Api, add_api_options, run_command, segment, table


def since(text: str) -> datetime:
    """7d, 12h, 30m, or an RFC 3339 time / date."""
    match = re.fullmatch(r"(\d+)([dhm])", text)
    if match:
        amount, unit = int(match[1]), match[2]
        unit_name = {"d": "days", "h": "hours", "m": "minutes"}[unit]
        return datetime.now(UTC) - timedelta(**{unit_name: amount})
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # to the microsecond, like decided_at


def decision_rows(items: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            d["decided_at"][:19],
            d["customer_id"],
            d["action"],
            d["reasons"][0],
            lifecycle(d),
            (d["send_at"] or "")[:16],
            f"v{d['policy_version']}",
            d["decision_id"],
        ]
        for d in items
    ]


def lifecycle(d: dict[str, Any]) -> str:
    """The state, and for a cancellation why: `cancelled (EXPIRED)`."""
    state = str(d.get("state") or "")
    return f"{state} ({d['state_reason']})" if d.get("state_reason") else state


def decisions(api: Api, args: argparse.Namespace) -> int:
    query: dict[str, Any] = {
        "customer_id": args.customer,
        "action": args.action_filter,
        "reason": args.reason,
        "state": args.state,
        "limit": min(args.limit, 500),
    }
    if args.since:
        query["from"] = stamp(since(args.since))
        if not args.customer:  # a customer's history is open-ended; a range across customers is bounded
            query["to"] = stamp(datetime.now(UTC) + timedelta(minutes=1))
    found: list[dict[str, Any]] = []
    while len(found) < args.limit:
        body, _ = api.call("GET", "/decisions", query=query)
        found += body["items"]
        if not body["next_token"]:
            break
        query["next_token"] = body["next_token"]
    found = found[: args.limit]
    if args.json:
        print("\n".join(json.dumps(d) for d in found))
        return OK
    print(
        table(
            decision_rows(found), ["decided (UTC)", "customer", "action", "reason", "state", "send at", "policy", "id"]
        )
    )
    print(f"{len(found)} decision(s)")
    return OK


def why(api: Api, args: argparse.Namespace) -> int:
    d, _ = api.call("GET", f"/decisions/{segment(args.decision_id)}")
    if args.json:
        print(json.dumps(d, indent=2))
        return OK
    print(
        f"{d['decision_id']}: {d['action'].upper()} for customer {d['customer_id']} "
        f"(event {d['event_id']}, interaction {d['interaction_id']})"
    )
    print(
        f"decided {d['decided_at']} under policy v{d['policy_version']} ({d['policy_scope']})"
        + (f", send at {d['send_at']}" if d["send_at"] else "")
    )
    print(f"reasons: {', '.join(d['reasons'])}")
    print(f"state: {lifecycle(d)} since {d.get('state_changed_at')}" + lifecycle_note(d))
    if d.get("supersedes"):
        print(f"cancelled on deciding (superseded): {', '.join(d['supersedes'])}")
    facts = d["input"]
    print("input: " + ", ".join(f"{k}={v}" for k, v in facts.items() if v is not None))
    print(
        table(
            [["ok" if c["passed"] else "NO", c["rule"], c["message"]] for c in d["explanation"]],
            ["", "rule", "explanation"],
        )
    )
    return OK


LIFECYCLE_NOTES = {
    "pending": ", held until its send time, then re-checked and released or cancelled",
    "released": ", handed to the sending systems",
    "suppressed": ", no follow-up",
    "SUPERSEDED_BY_NEWER_INTERACTION": ": a newer interaction of the customer closed before it went out",
    "OPTED_OUT": ": the customer opted out before it went out",
    "EXPIRED": ": it would have gone out past the policy's freshness limit",
    "POLICY_FORBIDS": ": the current policy no longer allows it",
}


def lifecycle_note(d: dict[str, Any]) -> str:
    return LIFECYCLE_NOTES.get(str(d.get("state_reason") or d.get("state")), "")


def customer(api: Api, args: argparse.Namespace) -> int:
    state, _ = api.call("GET", f"/customers/{segment(args.customer_id)}/contact-state")
    if args.json:
        print(json.dumps(state, indent=2))
        return OK
    print(f"customer {state['customer_id']} as of {state['as_of']} (policy v{state['policy_version']})")
    print(f"next survey allowed:   {state['next_survey_allowed'] or 'never (opted out or no capacity)'}")
    print(f"next callback allowed: {state['next_callback_allowed'] or 'never (opted out or no capacity)'}")
    for opt_out in state["opt_outs"]:
        print(f"opted out of {opt_out['kind']} since {opt_out['at']} ({opt_out['source']})")
    print(
        table(
            [[w["kind"], w["window"], f"{w['count']}/{w['cap']}", w["next_allowed"] or "-"] for w in state["windows"]],
            ["kind", "window", "used", "next allowed"],
        )
    )
    print_follow_up_record(state)
    entries = [
        [
            e.get("decided_at", e.get("at", ""))[:19],
            e.get("action", ""),
            (e.get("reasons") or [e.get("record_type", "")])[0],
            lifecycle(e) if "decision_id" in e else "",
            e.get("decision_id", e.get("actor", "")),
        ]
        for e in state["last_entries"]
    ]
    print(table(entries, ["when (UTC)", "action", "reason", "state", "decision / actor"]))
    return OK


def print_follow_up_record(state: dict[str, Any]) -> None:
    """Held follow-ups, the survey response/ignore record and any cooldown or fatigue pause."""
    pending = state.get("pending_follow_ups") or []
    if pending:
        rows = [[p["kind"], p["send_at"][:19], p["decision_id"]] for p in pending]
        print(table(rows, ["pending", "send at (UTC)", "decision"]))
    else:
        print("no follow-up pending")
    record = state.get("survey_record") or {}
    if record:
        print(
            f"surveys: {record['responses']} answered"
            + (f" (last {record['last_response'][:16]})" if record.get("last_response") else "")
            + f", {record['ignored_in_a_row']} ignored in a row (a pause after {record['ignored_threshold']})"
        )
        if record.get("cooldown_until"):
            print(f"no survey until {record['cooldown_until'][:16]}: cooldown after a response")
        if record.get("fatigue_until"):
            print(f"no survey until {record['fatigue_until'][:16]}: survey fatigue (ignored in a row)")


def opt_out(api: Api, args: argparse.Namespace) -> int:
    body, _ = api.call(
        "PUT", f"/customers/{segment(args.customer_id)}/preferences", {args.kind: not args.undo, "source": args.source}
    )
    kinds = ", ".join(f"{o['kind']} ({o['source']})" for o in body["opt_outs"]) or "none"
    print(f"customer {args.customer_id} opt-outs: {kinds}")
    return OK


def stats(api: Api, args: argparse.Namespace) -> int:
    start = since(args.since)
    body, _ = api.call("GET", "/stats", query={"from": f"{start:%Y-%m-%d}", "to": f"{datetime.now(UTC):%Y-%m-%d}"})
    if args.json:
        print(json.dumps(body, indent=2))
        return OK
    rows = [
        [
            d["day"],
            str(d["total"]),
            *(str(d["by_action"].get(a, 0)) for a in ("survey", "callback", "none")),
            f"{d['suppression_rate']:.1%}" if d["suppression_rate"] is not None else "-",
        ]
        for d in body["days"]
    ]
    print(table(rows, ["day", "total", "survey", "callback", "none", "suppressed"]))
    total = body["total"]
    print(
        f"\n{total['total']} decisions, suppression rate "
        + (f"{total['suppression_rate']:.1%}" if total["suppression_rate"] is not None else "-")
    )
    print(
        table([[k, str(v)] for k, v in sorted(total["by_reason"].items(), key=lambda kv: -kv[1])], ["reason", "count"])
    )
    print(f"\n{total['released']} follow-ups released, {total['cancelled']} cancelled")
    cancelled = sorted(total["cancelled_by_reason"].items(), key=lambda kv: -kv[1])
    if cancelled:
        print(table([[k, str(v)] for k, v in cancelled], ["cancelled because", "count"]))
    return OK


def export(api: Api, args: argparse.Namespace) -> int:
    """Streams every page to stdout (CSV header once)."""
    query: dict[str, Any] = {"from": args.start, "to": args.end, "format": args.format}
    while True:
        raw, headers = api.call_raw("GET", "/decisions/export", query=query)
        sys.stdout.write(raw)
        token = headers.get("X-Next-Token") or headers.get("x-next-token")
        if not token:
            return OK
        query["next_token"] = token


def add_commands(commands: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_api_options(common)

    p = commands.add_parser("decisions", parents=[common], help="decisions of a customer, or of a time range")
    p.add_argument("--customer")
    p.add_argument("--since", help="7d, 12h, or a time; required without --customer (31 days at most)")
    p.add_argument("--reason")
    p.add_argument("--action", dest="action_filter", choices=["survey", "callback", "none"])
    p.add_argument("--state", choices=["suppressed", "pending", "released", "cancelled"], help="lifecycle state")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_command, action=decisions)

    p = commands.add_parser("why", parents=[common], help="one decision, rule by rule")
    p.add_argument("decision_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_command, action=why)

    p = commands.add_parser("customer", parents=[common], help="a customer's windows, next allowed times, opt-outs")
    p.add_argument("customer_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_command, action=customer)

    p = commands.add_parser("opt-out", parents=[common], help="record (or --undo) a customer's opt-out")
    p.add_argument("customer_id")
    p.add_argument("--kind", choices=["survey", "callback", "all"], required=True)
    p.add_argument("--source", default="governor cli", help="where the wish came from")
    p.add_argument("--undo", action="store_true")
    p.set_defaults(run=run_command, action=opt_out)

    p = commands.add_parser("stats", parents=[common], help="decisions per day by action and reason")
    p.add_argument("--since", default="30d")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_command, action=stats)

    p = commands.add_parser("export", parents=[common], help="every decision of a range, NDJSON or CSV, to stdout")
    p.add_argument("--from", dest="start", required=True)
    p.add_argument("--to", dest="end", required=True)
    p.add_argument("--format", choices=["ndjson", "csv"], default="ndjson")
    p.set_defaults(run=run_command, action=export)
