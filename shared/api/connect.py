"""Amazon Connect contact-flow invokes: parameters arrive as strings, answers must be a flat map
of strings (Connect cannot read nested values)."""

from __future__ import annotations

import contextlib
from typing import Any

from shared.domain.decision import Decision
from shared.domain.errors import GovernorError

_INTEGERS = ("handle_seconds", "contact_attempts", "reopen_count")
_NUMBERS = ("sentiment",)
_CHANNELS = {"VOICE": "phone", "CHAT": "chat", "TASK": "web", "EMAIL": "email"}


def is_contact_flow_event(event: dict[str, Any]) -> bool:
    return event.get("Name") == "ContactFlowEvent" and isinstance(event.get("Details"), dict)


def detail_from(event: dict[str, Any]) -> dict[str, Any]:
    """The InteractionClosed detail carried by `Details.Parameters`. Empty strings mean absent;
    numbers are converted only when they read as numbers, so the model still names a bad one.
    Missing ids and channel default to the contact's own (ContactId, Channel)."""
    details = event["Details"]
    parameters: dict[str, Any] = {k: v for k, v in (details.get("Parameters") or {}).items() if v != ""}
    contact = details.get("ContactData") or {}
    for name in _INTEGERS:
        if isinstance(parameters.get(name), str) and parameters[name].lstrip("-").isdigit():
            parameters[name] = int(parameters[name])
    for name in _NUMBERS:
        if isinstance(parameters.get(name), str):
            with contextlib.suppress(ValueError):  # left as text: the model refuses it by name
                parameters[name] = float(parameters[name])
    if contact.get("ContactId"):
        parameters.setdefault("event_id", contact["ContactId"])
        parameters.setdefault("interaction_id", contact["ContactId"])
    if contact.get("Channel") in _CHANNELS:
        parameters.setdefault("channel", _CHANNELS[contact["Channel"]])
    return parameters


def answer(decision: Decision) -> dict[str, str]:
    failing = next((check.message for check in decision.explanation if not check.passed), "")
    return {
        "status": "ok",
        "action": str(decision.action),
        "reason": str(decision.reason),
        "reasons": ",".join(decision.reasons),
        "decision_id": decision.decision_id,
        "send_at": decision.send_at.isoformat().replace("+00:00", "Z") if decision.send_at else "",
        "policy_version": str(decision.policy_version),
        "explanation": failing,
    }


def refusal(code: str, message: str, fields: list[str]) -> dict[str, str]:
    return {"status": "error", "error_code": code, "error_message": message, "error_fields": ",".join(fields)}


def refusal_for(error: GovernorError) -> dict[str, str]:
    """A domain error as Connect's flat map: its code (INVALID_INPUT, IDEMPOTENCY_KEY_REUSED,
    TRY_AGAIN), message and the fields to change, for the contact flow to branch on."""
    fields = [str(f["field"]) for f in getattr(error, "fields", [])]
    return refusal(error.code, str(error), fields)
