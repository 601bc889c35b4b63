"""`governor replay FILE`: send recorded events through a running local stack and summarise.

FILE is NDJSON: one InteractionClosed detail per line, or one EventBridge entry per line
(a PutEvents entry with "Detail", or a delivered event with "detail")."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import click

from cli.api import ApiError, reason_of
from cli.context import OK, REFUSED, UNAVAILABLE, CliError, Settings, info, pass_settings

CHUNK = 100  # POST /events takes at most 100 details
ATTEMPTS = 3  # an item EventBridge did not take (TRY_AGAIN) is sent again, this many times in all
SHOWN = 20  # refused lines listed one by one; beyond, a count (and the rest with --output json)


@dataclass(frozen=True)
class Refusal:
    """One refused line of the file: its number, the fields named, why. One line, one refusal."""

    line: int
    message: str
    fields: tuple[str, ...] = ()

    def said(self) -> str:
        return f"line {self.line}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "fields": list(self.fields), "message": self.message}


@dataclass
class Source:
    """An NDJSON file read: the details to send with the line each came from, and the lines
    refused before sending (not JSON, not an object)."""

    details: list[Any] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


def detail_of(item: Any) -> Any:
    """The detail of a line: itself, or the detail of an EventBridge entry (a PutEvents entry with
    "Detail" as a string or object, or a delivered event with "detail")."""
    if isinstance(item, dict) and isinstance(item.get("detail"), dict):
        return item["detail"]
    if isinstance(item, dict) and "Detail" in item:
        return json.loads(item["Detail"]) if isinstance(item["Detail"], str) else item["Detail"]
    return item


def parse(text: str) -> Source:
    source = _lines(text)
    if source.refused and not source.details:
        # Not NDJSON at all: a file holding one pretty-printed event (infra/example-event.json, what
        # the curl examples post) is that one event, rather than a refusal of each of its lines.
        try:
            whole = detail_of(json.loads(text))
        except (ValueError, RecursionError):
            return source
        if isinstance(whole, dict):
            return Source([whole], [1])
    return source


def _lines(text: str) -> Source:
    source = Source()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = detail_of(json.loads(line))
        except ValueError:
            source.refused.append(Refusal(number, "not JSON"))
            continue
        except RecursionError:
            source.refused.append(Refusal(number, "nested too deeply"))
            continue
        if not isinstance(item, dict):
            source.refused.append(Refusal(number, "not a JSON object (an InteractionClosed detail)"))
            continue
        source.details.append(item)
        source.lines.append(number)
    return source


def read(path: Path) -> Source:
    try:
        return parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not a text file (UTF-8 NDJSON)") from None
    except OSError as error:
        raise CliError(f"{path}: {error.strerror or error}") from None


def load(path: Path) -> list[Any]:
    """The details of an NDJSON file (lines that are not a JSON object are left out)."""
    return read(path).details


@dataclass
class Report:
    sent: int = 0
    accepted: int = 0
    refused: list[Refusal] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    drained: bool = True
    advanced_to: str | None = None  # event clock: every schedule due by then was fired

    @property
    def refused_fields(self) -> Counter[str]:
        """Refused lines by field named (a line naming two fields counts under both)."""
        return Counter(name for refusal in self.refused for name in refusal.fields)

    def table(self) -> str:
        by_action = Counter(d["action"] for d in self.decisions)
        by_reason = Counter((d["action"], d["reasons"][0]) for d in self.decisions)
        total = len(self.decisions) or 1
        rate = self.accepted / self.seconds if self.seconds else 0.0
        lines = [
            f"{self.sent} events sent, {self.accepted} accepted, "
            + (f"{len(self.refused)} line(s) refused, " if self.refused else "")
            + f"{len(self.decisions)} decisions in {self.seconds:.1f} s ({rate:.0f} events/s)"
            + ("" if self.drained else "  [queue NOT drained]"),
            "",
            f"{'action':<10} {'deciding reason':<30} {'count':>6} {'share':>7}",
            "-" * 56,
        ]
        for (action, reason), count in sorted(by_reason.items(), key=lambda kv: (kv[0][0], -kv[1])):
            lines.append(f"{action:<10} {reason:<30} {count:>6} {count / total:>7.1%}")
        lines.append("-" * 56)
        for action in ("survey", "callback", "none"):
            lines.append(f"{action:<41} {by_action.get(action, 0):>6} {by_action.get(action, 0) / total:>7.1%}")
        lines.append(f"suppression rate: {by_action.get('none', 0) / total:.1%}")
        lines += self.lifecycle()
        if self.refused:
            lines += ["", f"refused lines ({len(self.refused)}):"]
            lines += [f"  {refusal.said()}" for refusal in self.refused[:SHOWN]]
            if len(self.refused) > SHOWN:
                lines.append(f"  ... and {len(self.refused) - SHOWN} more (all of them with --output json)")
                lines.append(
                    "  by field: " + ", ".join(f"{name} {count}" for name, count in self.refused_fields.most_common())
                )
        return "\n".join(lines)

    def lifecycle(self) -> list[str]:
        """Where the approvals ended: released, cancelled (by reason), or still pending."""
        states = Counter(d.get("state") for d in self.decisions if d["action"] != "none")
        cancelled = Counter(d.get("state_reason") for d in self.decisions if d.get("state") == "cancelled")
        lines = [
            "",
            f"follow-ups: {states.get('released', 0)} released, {states.get('cancelled', 0)} cancelled, "
            f"{states.get('pending', 0)} pending"
            + (f" (schedules fired up to {self.advanced_to})" if self.advanced_to else ""),
        ]
        lines += [f"  cancelled {reason:<35} {count:>6}" for reason, count in cancelled.most_common()]
        return lines

    def as_json(self) -> dict[str, Any]:
        by_action = Counter(d["action"] for d in self.decisions)
        by_reason = Counter(d["reasons"][0] for d in self.decisions)
        states = Counter(d.get("state") for d in self.decisions if d["action"] != "none")
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "refused": [r.as_json() for r in self.refused],
            "decisions": len(self.decisions),
            "by_action": dict(by_action),
            "by_reason": dict(by_reason),
            "follow_ups": {k: states.get(k, 0) for k in ("released", "cancelled", "pending")},
            "drained": self.drained,
            "advanced_to": self.advanced_to,
            "seconds": round(self.seconds, 3),
        }


def request(method: str, url: str, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
    """One call to the stack: (status, JSON body), an HTTP error's status and body included; a stack
    that cannot be reached is an ApiError (UNREACHABLE, with the URL), as for every command."""
    data = json.dumps(body).encode() if body is not None else None
    if not url.startswith(("http://", "https://")):
        raise CliError(f"not an http(s) URL: {url}")
    headers = {"Content-Type": "application/json"}
    outgoing = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - checked above
    try:
        with urllib.request.urlopen(outgoing, timeout=timeout) as answer:  # noqa: S310 - our own http URLs
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"null")
        except ValueError:
            return error.code, {"message": raw.decode(errors="replace")[:200]}
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        # Worded as every other command words it (`connection refused`), not `[Errno 111] ...`.
        message = reason_of(reason) if isinstance(reason, Exception) else str(reason)
        raise ApiError(0, {"code": "UNREACHABLE", "message": message}, "/".join(url.split("/", 3)[:3])) from None


def progress(done: int, total: int, out: TextIO) -> None:
    """A bar redrawn in place on a terminal; elsewhere nothing until the end (logs stay readable)."""
    if not out.isatty():
        if done >= total:
            out.write(f"posted {done}/{total}")
        return
    width = 30
    filled = int(width * done / total) if total else width
    out.write(f"\r[{'#' * filled}{' ' * (width - filled)}] {done}/{total}")
    out.flush()


def post_chunk(base_url: str, chunk: list[Any]) -> dict[str, Any]:
    """POST /events, each item EventBridge did not take (TRY_AGAIN, or a 503 for the whole
    request) sent again, up to ATTEMPTS times: a busy local bus refuses nothing for good."""
    answer: dict[str, Any] = {"accepted": 0, "failed": []}
    pending = list(range(len(chunk)))
    for attempt in range(ATTEMPTS):
        status, body = request("POST", f"{base_url}/events", {"events": [chunk[i] for i in pending]})
        if status == 503 and attempt < ATTEMPTS - 1:
            time.sleep(0.2 * (attempt + 1))
            continue
        if status != 202:
            raise ApiError(status, body, base_url)
        answer["accepted"] += body["accepted"]
        again = []
        for failure in body["failed"]:
            index = pending[failure["index"]]
            if failure.get("code") == "TRY_AGAIN" and attempt < ATTEMPTS - 1:
                again.append(index)
            else:
                answer["failed"].append({**failure, "index": index})
        if not again:
            break
        pending = again
        time.sleep(0.2 * (attempt + 1))
    return answer


def send(
    base_url: str,
    details: list[Any] | Source,
    out: TextIO | None = None,
    timeout: float = 600,
    on_posted: Callable[[int], None] | None = None,
) -> Report:
    """Posts every detail, then waits until the polled queues are empty; `timeout` is how long the
    queues may stay without shrinking before giving up, not a limit on the whole replay. Given a
    Source, refusals name the file's lines (and include the lines refused before sending)."""
    out = out or sys.stderr
    source = details if isinstance(details, Source) else Source(list(details), list(range(1, len(details) + 1)))
    items = source.details
    report = Report(sent=len(items), refused=list(source.refused))
    started = time.perf_counter()
    accepted_ids: set[tuple[str, str]] = set()
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        answer = post_chunk(base_url, chunk)
        refused = {f["index"] for f in answer["failed"]}
        for failure in answer["failed"]:
            report.refused.append(
                Refusal(
                    source.lines[start + failure["index"]],
                    failure.get("message") or failure["code"],
                    tuple(failure.get("fields") or ()),
                )
            )
        for index, item in enumerate(chunk):
            if index not in refused:
                accepted_ids.add((str(item["customer_id"]), str(item["event_id"])))
        report.accepted += answer["accepted"]
        progress(min(start + CHUNK, len(items)), len(items), out)
        if on_posted is not None:
            on_posted(report.accepted)
    if items:  # ends the progress line; nothing was drawn when nothing was sent
        out.write("\n")
    report.refused.sort(key=lambda r: r.line)
    report.drained = wait_drained(base_url, timeout)
    report.decisions = fetch_decisions(base_url, sorted(accepted_ids))
    if report.drained and event_clock(base_url):
        report.advanced_to = advance_to_the_end(base_url, report.decisions)
        if report.advanced_to:
            report.decisions = fetch_decisions(base_url, sorted(accepted_ids))
    report.seconds = time.perf_counter() - started
    return report


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--in-process", is_flag=True, help="Start a throwaway local stack in this process instead.")
@click.option(
    "--clock",
    type=click.Choice(["wall", "event"]),
    default="event",
    show_default=True,
    help="With --in-process: the stack's clock (event: each event decided as of its closed_at).",
)
@click.option("--allow-invalid", is_flag=True, help="Exit 0 even when lines were refused.")
@pass_settings
def replay(settings: Settings, file: Path, in_process: bool, clock: str, allow_invalid: bool) -> int:
    """Send an NDJSON file of events through a local stack and summarise the decisions.

    FILE holds one InteractionClosed detail per line, or one EventBridge entry per line (a PutEvents
    entry with "Detail", or a delivered event with "detail"), or a single one over several lines.
    Refused lines are reported by line number and field, one line one refusal; then the exit code is
    1 (--allow-invalid: 0). The stack is the one --url / GOVERNOR_URL / a running `governor local`
    names, or --in-process.
    """
    source = read(file)
    if in_process:
        from infra.local.stack import LOG_FILE, running

        info(f"starting a local stack for the replay (clock {clock})")
        with running(port=0, clock=clock, log_to=LOG_FILE) as stack:
            report = send(stack.url, source)
    else:
        report = send(settings.url.rstrip("/"), source)
    if settings.output in ("json", "ndjson"):
        click.echo(json.dumps(report.as_json(), indent=None if settings.output == "ndjson" else 2))
    else:
        click.echo(report.table())
    if not report.drained:
        raise CliError(
            f"the queues did not drain: {len(report.decisions)} of {report.accepted} accepted events decided",
            UNAVAILABLE,
            hint="see /health for the queue depths, and the function logs",
        )
    if report.refused and not allow_invalid:
        info(f"{len(report.refused)} line(s) of {file} refused (--allow-invalid to exit 0 anyway)")
        return REFUSED
    return OK


def health_of(base_url: str) -> dict[str, Any]:
    """GET /health of a `governor local` stack; anything else cannot take a replay."""
    status, health = request("GET", f"{base_url}/health")
    if status != 200 or not isinstance(health, dict) or "queues" not in health:
        raise CliError(
            f"{base_url} is not a `governor local` stack (GET /health answered {status}): replay needs one",
            UNAVAILABLE,
            hint="start one with `governor local`, point at it with --url, or use --in-process",
        )
    return health


def event_clock(base_url: str) -> bool:
    return bool(health_of(base_url).get("clock") == "event")


def advance_to_the_end(base_url: str, decisions: list[dict[str, Any]]) -> str | None:
    """Recorded traffic has an end; its held follow-ups fall due after it. Under the event clock,
    fire every schedule up to the last pending send time, so the replay ends with none pending."""
    pending = [d["send_at"] for d in decisions if d.get("state") == "pending" and d.get("send_at")]
    if not pending:
        return None
    # Schedules run at whole seconds, rounded up: a second past the last send time covers them all.
    last = datetime.fromisoformat(max(pending).replace("Z", "+00:00")) + timedelta(seconds=1)
    to = last.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, answer = request("POST", f"{base_url}/local/advance", {"to": to})
    if status != 200:
        raise ApiError(status, answer, base_url)
    return str(to)


def wait_drained(base_url: str, timeout: float) -> bool:
    """True once the polled queues are empty twice in a row; False once they have not shrunk for
    `timeout` seconds (a long backlog that keeps draining is waited for)."""
    deadline, calm, least = time.monotonic() + timeout, 0, None
    while time.monotonic() < deadline:
        health = health_of(base_url)
        polled = [name for name in health.get("pollers", {}) if name in health["queues"]]  # not the log stream
        left = sum(health["queues"][q]["visible"] + health["queues"][q]["in_flight"] for q in polled)
        if least is None or left < least:
            least, deadline = left, time.monotonic() + timeout
        calm = calm + 1 if left == 0 else 0
        if calm >= 2:
            return True
        time.sleep(0.3)
    return False


def fetch_decisions(base_url: str, events: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Reads the decisions of these (customer_id, event_id) pairs straight from the local log table
    (decision ids are derived from them), through the emulator endpoint the stack reports."""
    import boto3

    from shared.adapters import decision_log
    from shared.domain.decision import decision_id_for

    health = health_of(base_url)
    table = health["names"]["DecisionLogTable"]
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=health["moto"]["endpoint"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto accepts any credentials
    )
    keys = [decision_log.key(decision_id_for(c, e)) for c, e in events]
    found = []
    for start in range(0, len(keys), 100):
        request_items: dict[str, Any] = {table: {"Keys": keys[start : start + 100]}}
        while request_items:
            answer = dynamodb.batch_get_item(RequestItems=request_items)
            found += [decision_log.from_item(i).model_dump(mode="json") for i in answer["Responses"].get(table, [])]
            request_items = answer.get("UnprocessedKeys") or {}
    return found
