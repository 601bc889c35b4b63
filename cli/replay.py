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

import boto3

from shared.adapters import decision_log
from shared.domain.decision import decision_id_for

CHUNK = 100  # POST /events takes at most 100 details


def load(path: Path) -> list[Any]:
    details = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            details.append({"__unparseable_line__": number})
            continue
        if isinstance(item, dict) and isinstance(item.get("detail"), dict):
            item = item["detail"]
        elif isinstance(item, dict) and "Detail" in item:
            item = json.loads(item["Detail"]) if isinstance(item["Detail"], str) else item["Detail"]
        details.append(item)
    return details


@dataclass
class Report:
    sent: int = 0
    accepted: int = 0
    refused_fields: Counter[str] = field(default_factory=Counter)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    drained: bool = True
    advanced_to: str | None = None  # event clock: every schedule due by then was fired

    def table(self) -> str:
        by_action = Counter(d["action"] for d in self.decisions)
        by_reason = Counter((d["action"], d["reasons"][0]) for d in self.decisions)
        total = len(self.decisions) or 1
        rate = self.accepted / self.seconds if self.seconds else 0.0
        lines = [
            f"{self.sent} events sent, {self.accepted} accepted, {len(self.decisions)} decisions "
            f"in {self.seconds:.1f} s ({rate:.0f} events/s)" + ("" if self.drained else "  [queue NOT drained]"),
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
        if self.refused_fields:
            lines += ["", "invalid events by field:"]
            lines += [f"  {name}: {count}" for name, count in self.refused_fields.most_common()]
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


def request(method: str, url: str, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")
    headers = {"Content-Type": "application/json"}
    outgoing = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - checked above
    try:
        with urllib.request.urlopen(outgoing, timeout=timeout) as answer:  # noqa: S310 - our own http URLs
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def progress(done: int, total: int, out: TextIO) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    out.write(f"\r[{'#' * filled}{' ' * (width - filled)}] {done}/{total}")
    out.flush()


def replay(
    base_url: str,
    details: list[Any],
    out: TextIO | None = None,
    timeout: float = 600,
    on_posted: Callable[[int], None] | None = None,
) -> Report:
    """Posts every detail, then waits until the polled queues are empty; `timeout` is how long the
    queues may stay without shrinking before giving up, not a limit on the whole replay."""
    out = out or sys.stderr
    report = Report(sent=len(details))
    started = time.perf_counter()
    accepted_ids: set[tuple[str, str]] = set()
    for start in range(0, len(details), CHUNK):
        chunk = details[start : start + CHUNK]
        status, answer = request("POST", f"{base_url}/events", {"events": chunk})
        if status != 202:
            raise RuntimeError(f"POST /events answered {status}: {answer}")
        refused = {f["index"] for f in answer["failed"]}
        for failure in answer["failed"]:
            for name in failure.get("fields", [failure["code"]]):
                report.refused_fields[name] += 1
        for index, item in enumerate(chunk):
            if index not in refused:
                accepted_ids.add((str(item["customer_id"]), str(item["event_id"])))
        report.accepted += answer["accepted"]
        progress(min(start + CHUNK, len(details)), len(details), out)
        if on_posted is not None:
            on_posted(report.accepted)
    out.write("\n")
    report.drained = wait_drained(base_url, timeout)
    report.decisions = fetch_decisions(base_url, sorted(accepted_ids))
    if report.drained and event_clock(base_url):
        report.advanced_to = advance_to_the_end(base_url, report.decisions)
        if report.advanced_to:
            report.decisions = fetch_decisions(base_url, sorted(accepted_ids))
    report.seconds = time.perf_counter() - started
    return report


def event_clock(base_url: str) -> bool:
    _, health = request("GET", f"{base_url}/health")
    return bool(health.get("clock") == "event")


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
        raise RuntimeError(f"POST /local/advance answered {status}: {answer}")
    return str(to)


def wait_drained(base_url: str, timeout: float) -> bool:
    """True once the polled queues are empty twice in a row; False once they have not shrunk for
    `timeout` seconds (a long backlog that keeps draining is waited for)."""
    deadline, calm, least = time.monotonic() + timeout, 0, None
    while time.monotonic() < deadline:
        _, health = request("GET", f"{base_url}/health")
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
    _, health = request("GET", f"{base_url}/health")
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
