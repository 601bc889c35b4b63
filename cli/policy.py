"""`governor policy ...`: marketing ops' contact limits from the command line, over the policy API."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

from cli.api import OK, REFUSED, UNAVAILABLE, Api, add_api_options, run_command, table


def load(path: Path) -> dict[str, Any]:
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        document = yaml.safe_load(text)
    else:
        document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError(f"{path} must hold one policy object")
    return document


def etag_version(headers: dict[str, str]) -> int:
    return int(headers.get("ETag", headers.get("etag", '"0"')).strip('"'))


def show_changes(diff: list[dict[str, Any]]) -> str:
    if not diff:
        return "no changes"
    rows = [[d["path"], json.dumps(d["before"]), json.dumps(d["after"])] for d in diff]
    return table(rows, ["rule", "before", "after"])


def show(api: Api, args: argparse.Namespace) -> int:
    path = f"/policy/versions/{args.version}" if args.version is not None else "/policy"
    body, _ = api.call("GET", path)
    if args.json:
        print(json.dumps(body, indent=2))
        return OK
    print(f"version {body['version']} ({body['kind']}) by {body['author']} at {body['created_at']}: {body['comment']}")
    print(json.dumps(body["policy"], indent=2))
    return OK


def validate(api: Api, args: argparse.Namespace) -> int:
    body, _ = api.call("POST", "/policy/validate", {"policy": load(args.file)})
    if not body["valid"]:
        print(f"{args.file}: {len(body['problems'])} problem(s)")
        print(table([[p["field"], p["message"]] for p in body["problems"]], ["where", "problem"]))
        return REFUSED
    print(f"{args.file}: valid")
    if args.command_name == "diff":
        print(show_changes(body["diff"]))
    return OK


def apply(api: Api, args: argparse.Namespace) -> int:
    document = load(args.file)
    based_on = args.based_on
    if based_on is None:
        _, headers = api.call("GET", "/policy")
        based_on = etag_version(headers)
    body, _ = api.call("PUT", "/policy", {"policy": document, "comment": args.message}, {"If-Match": f'"{based_on}"'})
    print(f"version {body['version']} is current (based on {based_on})")
    print(show_changes(body["diff"]))
    return OK


def simulate(api: Api, args: argparse.Namespace) -> int:
    if args.job:
        return simulate_job(api, args)
    body, _ = api.call("POST", "/policy/simulate", {"policy": load(args.file), "days": args.days})
    return report(body, args)


def simulate_job(api: Api, args: argparse.Namespace) -> int:
    """Any window up to the log's retention, as a job: started, followed with a progress line on
    stderr (the estimate as soon as it is known), then answered as `simulate` answers."""
    # One key per command: a start the network lost and urllib retried names the same job.
    key = f"cli-{uuid.uuid4().hex}"
    started, _ = api.call(
        "POST", "/policy/simulations", {"policy": load(args.file), "days": args.days}, {"Idempotency-Key": key}
    )
    print(f"simulation job {started['job_id']} started", file=sys.stderr)
    if args.no_wait:
        print(json.dumps(started) if args.json else started["job_id"])
        return OK
    progress = Progress(sys.stderr)
    deadline = time.monotonic() + args.timeout
    while True:
        job, _ = api.call("GET", started["status_url"])
        progress.show(job)
        if job["status"] != "running":
            break
        if time.monotonic() > deadline:
            progress.end()
            print(f"simulation job {job['job_id']} still running after {args.timeout:.0f} s; ask again with its id")
            return UNAVAILABLE
        time.sleep(args.poll)
    progress.end()
    if job["status"] == "failed":
        error = job.get("error") or {}
        print(f"simulation job {job['job_id']} failed: {error.get('error')}: {error.get('message')}")
        return UNAVAILABLE
    return report(job["result"], args)


class Progress:
    """One line on stderr, redrawn in place on a terminal, else printed when it changes."""

    WIDTH = 30

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.last = ""
        self.tty = out.isatty()

    def show(self, job: dict[str, Any]) -> None:
        done, total = job["progress"]["partitions_done"], job["progress"]["partitions"]
        filled = self.WIDTH * done // max(total, 1)
        line = (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total} partitions, "
            f"{job['progress']['events_replayed']} events replayed"
        )
        estimate = job.get("estimate")
        if estimate and job["status"] == "running":
            share = estimate["estimate"]["share_of_customers"]
            line += f"; estimate from {share:.0%} of customers: {estimate['changed_events']} events would change"
        if line == self.last:
            return
        self.last = line
        if self.tty:
            self.out.write("\r" + line)
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def end(self) -> None:
        if self.tty and self.last:
            self.out.write("\n")
            self.out.flush()


def report(body: dict[str, Any], args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(body, indent=2))
        return OK
    print(f"{body['events']} logged events of the last {body['days']} days replayed in {body['seconds']:.1f} s")
    log = body.get("log")
    if log:
        span = f" ({log['first_day']} to {log['last_day']})" if log["first_day"] else ""
        print(f"the log has decisions on {log['days_with_decisions']} of the window's {log['window_days']} days{span}")
    for warning in body.get("warnings", []):
        print(f"WARNING: {warning}")
    current, candidate, delta = body["current"], body["candidate"], body["difference"]
    rows = []
    for group, label in (("by_action", "action"), ("by_reason", "reason")):
        for key in sorted(delta[group]):
            rows.append(
                [
                    label,
                    key,
                    str(current[group].get(key, 0)),
                    str(candidate[group].get(key, 0)),
                    f"{delta[group][key]:+d}",
                ]
            )
    for key in ("released", "cancelled"):
        rows.append(["follow-ups", key, str(current[key]), str(candidate[key]), f"{candidate[key] - current[key]:+d}"])
    for reason in sorted(set(current["cancelled_by_reason"]) | set(candidate["cancelled_by_reason"])):
        before, after = current["cancelled_by_reason"].get(reason, 0), candidate["cancelled_by_reason"].get(reason, 0)
        rows.append(["cancelled", reason, str(before), str(after), f"{after - before:+d}"])
    print(table(rows, ["", "", f"current (v{current['version']})", "candidate", "change"]))
    print(
        f"(supersession, freshness, cooldown and fatigue applied; {candidate['outcomes_applied']} logged outcomes "
        "of follow-ups the candidate would have sent)"
    )
    for line in body.get("current_vs_logged", {}).get("explanations", []):
        print(f"current policy against the log: {line}")
    print(f"\n{body['changed_events']} events would be decided differently")
    for customer in body["changed_customers_sample"]:
        for event in customer["events"]:
            print(
                f"  {customer['customer_id']}  {event['event_id']}  "
                f"{event['current']['action']}/{event['current']['reason']} -> "
                f"{event['candidate']['action']}/{event['candidate']['reason']}"
            )
    return OK


def history(api: Api, args: argparse.Namespace) -> int:
    body, _ = api.call("GET", "/policy/versions", query={"limit": args.limit})
    rows = [
        [
            str(v["version"]),
            v["kind"],
            v["created_at"][:19],
            v["author"],
            v["comment"],
            ", ".join(d["path"] for d in v["diff"]),
        ]
        for v in body["items"]
    ]
    print(table(rows, ["version", "kind", "at (UTC)", "author", "comment", "changed"]))
    return OK


def rollback(api: Api, args: argparse.Namespace) -> int:
    based_on = args.based_on
    if based_on is None:
        _, headers = api.call("GET", "/policy")
        based_on = etag_version(headers)
    body, _ = api.call(
        "POST",
        "/policy/rollback",
        {"version": args.version, "comment": args.message or ""},
        {"If-Match": f'"{based_on}"'},
    )
    print(f"version {body['version']} is current: the rules of version {args.version} again")
    print(show_changes(body["diff"]))
    return OK


def add_commands(commands: Any) -> None:
    policy = commands.add_parser("policy", help="show, validate, simulate, apply and roll back contact policies")
    add_api_options(policy)
    sub = policy.add_subparsers(dest="command_name", required=True)

    p = sub.add_parser("show", help="the current policy (or --version N)")
    p.add_argument("--version", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(action=show)
    for name, text in (("validate", "check a policy file"), ("diff", "what a policy file would change")):
        p = sub.add_parser(name, help=text)
        p.add_argument("file", type=Path)
        p.set_defaults(action=validate)
    p = sub.add_parser("apply", help="make a policy file the current policy")
    p.add_argument("file", type=Path)
    p.add_argument("-m", "--message", required=True, help="why (kept in the history)")
    p.add_argument("--based-on", type=int, help="refuse if the current version is not this one (default: current)")
    p.set_defaults(action=apply)
    p = sub.add_parser("simulate", help="replay recent logged events under the current policy and a candidate")
    p.add_argument("file", type=Path)
    p.add_argument("--days", type=int, default=30, help="up to 90; with --job up to the log's retention")
    p.add_argument("--json", action="store_true")
    p.add_argument("--job", action="store_true", help="run as a job (any window), with a progress line on stderr")
    p.add_argument("--no-wait", action="store_true", help="with --job: print the job id and return")
    p.add_argument("--poll", type=float, default=1.0, help="with --job: seconds between progress reads")
    p.add_argument("--timeout", type=float, default=3600.0, help="with --job: seconds to wait for the answer")
    p.set_defaults(action=simulate)
    p = sub.add_parser("history", help="every version, newest first")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(action=history)
    p = sub.add_parser("rollback", help="make version N current again, as a new version")
    p.add_argument("version", type=int)
    p.add_argument("-m", "--message")
    p.add_argument("--based-on", type=int)
    p.set_defaults(action=rollback)
    policy.set_defaults(run=run_command)
