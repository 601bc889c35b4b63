"""Ingest for upstream systems without EventBridge access: validate each item, put the valid ones
on the bus. A bad item is refused by index with its fields named and never stops the good ones."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from pydantic import ValidationError

from shared.adapters import aws
from shared.adapters.aws_errors import error_code, is_transient
from shared.domain.errors import InvalidInput, TransientFailure, field_problems
from shared.domain.events import InteractionClosed

MAX_EVENTS = 100
SOURCE = "followup.governor.ingest"
DETAIL_TYPE = "InteractionClosed"

logger = Logger(child=True)


@dataclass
class IngestResult:
    accepted: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)

    def refuse(self, index: int, code: str, message: str, fields: list[str] | None = None) -> None:
        self.failed.append({"index": index, "code": code, "message": message, **({"fields": fields} if fields else {})})

    def as_json(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "failed": sorted(self.failed, key=lambda f: f["index"])}


def items_of(payload: Any) -> list[Any]:
    """One detail object, or {"events": [detail, ...]} with at most MAX_EVENTS."""
    if isinstance(payload, dict) and set(payload) == {"events"}:
        events = payload["events"]
        if not isinstance(events, list) or not events:
            raise InvalidInput("events must be a non-empty list of InteractionClosed details", [_field("events")])
        if len(events) > MAX_EVENTS:
            raise InvalidInput(f"at most {MAX_EVENTS} events per request, got {len(events)}", [_field("events")])
        return events
    if isinstance(payload, dict):
        return [payload]
    raise InvalidInput('the body must be an InteractionClosed detail or {"events": [...]}', [_field("body")])


def validate(item: Any, now: datetime) -> InteractionClosed | list[dict[str, str]]:
    if not isinstance(item, dict):
        return [{"field": "body", "message": "must be a JSON object"}]
    try:
        event = InteractionClosed.model_validate(item)
    except ValidationError as error:
        return field_problems(error)
    except RecursionError:
        return [{"field": "attributes", "message": "is nested too deeply"}]
    problem = event.clock_problem(now)
    return [{"field": "closed_at", "message": problem}] if problem else event


def ingest(payload: Any, bus: str, now: datetime, client: Any = None) -> IngestResult:
    result = IngestResult()
    valid: list[tuple[int, dict[str, Any]]] = []
    for index, item in enumerate(items_of(payload)):
        checked = validate(item, now)
        if isinstance(checked, list):
            message = "; ".join(f"{p['field']}: {p['message']}" for p in checked)
            result.refuse(index, "INVALID_EVENT", message, sorted({p["field"] for p in checked}))
        else:
            valid.append((index, item))  # forwarded as sent: the decide function validates it again
    events = client or aws.client("events")
    for start in range(0, len(valid), 10):
        chunk = valid[start : start + 10]
        entries = [
            {
                "EventBusName": bus,
                "Source": SOURCE,
                "DetailType": DETAIL_TYPE,
                "Detail": json.dumps(item),
            }
            for _, item in chunk
        ]
        try:
            answer = events.put_events(Entries=entries)
        except ClientError as error:
            # Throttled or failing for a while: these items were not put, the caller resends them.
            # Anything else (the bus missing, a grant missing) is our fault and raises: 500, as
            # /decide answers it (shared.adapters.aws_errors decides for both).
            if not is_transient(error):
                raise
            logger.warning("PutEvents failed", extra={"aws_error": error_code(error)})
            for index, _ in chunk:
                result.refuse(index, "TRY_AGAIN", "EventBridge did not accept it; send it again")
            continue
        for (index, _), entry in zip(chunk, answer["Entries"], strict=True):
            if entry.get("ErrorCode"):
                result.refuse(
                    index, "TRY_AGAIN", f"EventBridge did not accept it ({entry['ErrorCode']}); send it again"
                )
            else:
                result.accepted += 1
    if valid and not result.accepted:
        # Nothing could be put: one 503 says "send the request again", as /decide answers.
        raise TransientFailure("EventBridge accepted none of the events; send the request again shortly")
    return result


def _field(name: str) -> dict[str, str]:
    return {"field": name, "message": "is invalid"}
