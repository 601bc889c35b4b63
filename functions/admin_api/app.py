"""Admins: why did (or didn't) a customer get a follow-up; opt-outs; stats; audit exports."""

import csv
import io
import json
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import TypeAdapter, ValidationError

from functions.admin_api.models import ContactState, DecisionPage, PreferencesChange, PreferencesView, StatsReport
from shared import wiring
from shared.adapters.tracing import LazyTracer
from shared.api.http import caller, documented, install_error_handlers, tagged
from shared.api.routing import DecodedPathResolver
from shared.domain.decision import Action, Decision, Reason, State
from shared.domain.errors import InvalidInput, NotFound
from shared.domain.interaction import Channel

if TYPE_CHECKING:
    from shared.adapters.log_queries import DecisionQuery
    from shared.domain.contacts import ContactLedger

logger = Logger()
tracer = LazyTracer()  # X-Ray is imported at the first invocation, not at cold import
metrics = Metrics()
app = DecodedPathResolver(enable_validation=True)  # ids with / # : = + in a path segment
install_error_handlers(app)

# The routes import the adapters and domain logic they use (log queries, preferences, stats, the
# contact-state arithmetic with the engine and policy) when they first run: the cold import is the
# HTTP edge, its models and the types its signatures name.

EXPORT_PAGE = 2000
# Lambda refuses a response over 6 MB (6,291,456 bytes, the body JSON-escaped inside it). A page
# ends at 4 MB of escaped decisions: room for the envelope, and under 6 MB even base64-encoded.
EXPORT_PAGE_BYTES = 4_000_000
MAX_STATS_DAYS = 366
EXPORT_PAGE_RESPONSE: OpenAPIResponse = {
    "description": "One page of decisions, newest first: CSV (a header row on the first page only) or NDJSON "
    "(one decision object a line).",
    "headers": {
        "X-Next-Token": {
            "description": "Present while more decisions may follow: send it back as next_token for the next page "
            "(a page may be short, even empty, and still carry one; only its absence means the end).",
            "schema": {"type": "string"},
        }
    },
    "content": {"text/csv": {"schema": {"type": "string"}}, "application/x-ndjson": {"schema": {"type": "string"}}},
}
Moment = Annotated[str | None, Query(description="RFC 3339 time, or a date (YYYY-MM-DD: the whole day)")]


def moment(value: str | None, field: str, end_of_day: bool = False) -> datetime | None:
    """A query's time bound in UTC, between 2000-01-01 and tomorrow, or a 400 naming `field`."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            parsed = datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{field} must be an RFC 3339 time or a date", [{"field": field, "message": "is not a time"}]
        ) from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{field} needs a UTC offset, e.g. Z", [{"field": field, "message": "has no offset"}])
    from shared.adapters.log_queries import check_moment  # noqa: PLC0415

    return check_moment(parsed, field, wiring.current_clock().now())


def decision_query(
    *,
    customer_id: str | None,
    start: str | None,
    end: str | None,
    action: Action | None,
    reason: Reason | None,
    limit: int,
    state: State | None = None,
) -> "DecisionQuery":
    from shared.adapters.log_queries import DecisionQuery  # noqa: PLC0415

    if customer_id is not None:
        check_customer_id(customer_id)
    query = DecisionQuery(
        customer_id, moment(start, "from"), moment(end, "to", end_of_day=True), action, reason, limit, state
    )
    return query.check(wiring.current_clock().now())


@cache
def customer_id_adapter() -> TypeAdapter[str]:
    """Built once, at the first check (a TypeAdapter builds its schema when made)."""
    # The event contract is imported here, not at the cold import: this API reads decisions.
    from shared.domain.events import CustomerId  # noqa: PLC0415

    return TypeAdapter(CustomerId)


def check_customer_id(value: str) -> None:
    try:
        customer_id_adapter().validate_python(value)
    except ValidationError as error:
        message = error.errors()[0]["msg"]
        raise InvalidInput(f"customer_id {message}", [{"field": "customer_id", "message": message}]) from None


@app.get("/decisions", responses=documented(400))
def list_decisions(
    *,
    customer_id: Annotated[str | None, Query()] = None,
    start: Annotated[str | None, Query(alias="from", description="RFC 3339 time or date")] = None,
    end: Annotated[str | None, Query(alias="to", description="RFC 3339 time or date (inclusive)")] = None,
    action: Annotated[Action | None, Query()] = None,
    reason: Annotated[Reason | None, Query(description="the deciding reason")] = None,
    state: Annotated[
        State | None, Query(description="lifecycle state: suppressed, pending, released or cancelled")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    next_token: Annotated[str | None, Query()] = None,
) -> DecisionPage:
    query = decision_query(
        customer_id=customer_id, start=start, end=end, action=action, reason=reason, limit=limit, state=state
    )
    items, token = wiring.log_queries().page(query, next_token)
    return DecisionPage(items=items, next_token=token)


@app.get("/decisions/export", responses=documented(400, success=EXPORT_PAGE_RESPONSE))
def export_decisions(
    *,
    start: Annotated[str, Query(alias="from")],
    end: Annotated[str, Query(alias="to")],
    format: Annotated[str, Query(pattern="^(ndjson|csv)$")] = "ndjson",
    action: Annotated[Action | None, Query()] = None,
    reason: Annotated[Reason | None, Query()] = None,
    next_token: Annotated[str | None, Query()] = None,
) -> Response[str]:
    """One page of up to 2000 decisions and 4 MB; the X-Next-Token header continues it (the CLI streams pages)."""
    query = decision_query(customer_id=None, start=start, end=end, action=action, reason=reason, limit=EXPORT_PAGE)
    items, token = wiring.log_queries().page(query, next_token, max_bytes=EXPORT_PAGE_BYTES)
    body = (
        to_csv(items, header=next_token is None)
        if format == "csv"
        else "".join(d.model_dump_json() + "\n" for d in items)
    )
    headers = {"X-Next-Token": token} if token else {}
    content = "text/csv" if format == "csv" else "application/x-ndjson"
    return Response(status_code=200, content_type=content, body=body, headers=headers)


CSV_COLUMNS = [
    "decision_id",
    "event_id",
    "interaction_id",
    "customer_id",
    "action",
    "reason",
    "reasons",
    "policy_version",
    "policy_scope",
    "decided_at",
    "send_at",
    "channel",
    "outcome",
    "closed_at",
]


def to_csv(decisions: list[Decision], header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for d in decisions:
        row = d.model_dump(mode="json")
        writer.writerow(
            [
                row["decision_id"],
                row["event_id"],
                row["interaction_id"],
                row["customer_id"],
                row["action"],
                row["reasons"][0],
                "|".join(row["reasons"]),
                row["policy_version"],
                row["policy_scope"],
                row["decided_at"],
                row["send_at"] or "",
                row["input"]["channel"],
                row["input"]["outcome"],
                row["input"]["closed_at"],
            ]
        )
    return out.getvalue()


@app.get("/decisions/<decision_id>", responses=documented(400, 404))
def get_decision(decision_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Decision:
    decision = wiring.log_queries().get(decision_id)
    if decision is None:
        raise NotFound(f"no decision {decision_id}; decision ids look like dcn_...")
    return decision


SCOPE_HELP = (
    "Contact state for interactions of this segment, brand or channel (overrides apply by them); "
    "when none is given, those of the customer's latest decision."
)
ScopeLabel = Annotated[str | None, Query(min_length=1, max_length=64, description=SCOPE_HELP)]


@app.get("/customers/<customer_id>/contact-state", responses=documented(400))
def get_contact_state(
    customer_id: Annotated[str, Path()],
    segment: ScopeLabel = None,
    brand: ScopeLabel = None,
    channel: Annotated[Channel | None, Query(description=SCOPE_HELP)] = None,
) -> ContactState:
    from shared.domain.contact_state import contact_state, scope_for  # noqa: PLC0415 - this route only

    check_customer_id(customer_id)
    entries = wiring.log_queries().timeline(customer_id, 10)
    scope = scope_for(entries, {"segment": segment, "brand": brand, "channel": channel})
    state = contact_state(
        wiring.preferences().get(customer_id),
        wiring.policy_store().current().policy,
        wiring.current_clock().now(),
        scope,
    )
    # Never seen: no decision and no admin action in the log (an opt-out is one). Still 200: the empty
    # state is a true answer, and the caller is told it means "never seen", not "seen, all clear".
    known = bool(entries)
    note = None if known else f"the governor has never seen customer {customer_id}: no decision, no admin action"
    return ContactState.model_validate({**state, "last_entries": entries, "known": known, "note": note})


# The opt-outs with their tag: what an admin saw, to send back as If-Match with a change.
TAGGED_PREFERENCES = tagged(
    "The customer's opt-outs.",
    PreferencesView,
    "The opt-outs' tag: send it as If-Match to change them only as you saw them.",
)
PreferencesIfMatch = Annotated[
    str | None,
    Header(
        alias="if-match",
        description="The ETag of the opt-outs this change is based on: answered 412 if they changed since "
        "(not if the change already holds). Without it, the kinds sent are set whatever the others are.",
    ),
]


def tagged_preferences(state: "ContactLedger") -> Response[Any]:
    from shared.adapters.preferences import as_json, etag  # noqa: PLC0415 - the preferences routes only

    return Response(
        status_code=200,
        content_type="application/json",
        body=PreferencesView.model_validate(as_json(state)).model_dump(mode="json"),
        headers={"ETag": f'"{etag(state.opt_outs)}"'},
    )


@app.get("/customers/<customer_id>/preferences", responses=documented(400, success=TAGGED_PREFERENCES))
def get_preferences(customer_id: Annotated[str, Path()]) -> Response[Any]:
    check_customer_id(customer_id)
    return tagged_preferences(wiring.preferences().get(customer_id))


@app.put("/customers/<customer_id>/preferences", responses=documented(400, 412, success=TAGGED_PREFERENCES))
def put_preferences(
    customer_id: Annotated[str, Path()],
    change: Annotated[PreferencesChange, Body()],
    if_match: PreferencesIfMatch = None,
) -> Response[Any]:
    check_customer_id(customer_id)
    wanted = {k: v for k, v in change.model_dump(exclude={"source"}).items() if v is not None}
    if not wanted:
        raise InvalidInput(
            "say which of survey, callback, all to set (true) or lift (false)",
            [{"field": "survey", "message": "no kind given"}],
        )
    actor = caller(app.current_event)
    # "*" (any opt-outs) is no condition; W/ and the quotes are the header's, not the tag's.
    tag = if_match.strip().removeprefix("W/").strip('"') if if_match and if_match.strip() != "*" else None
    state = wiring.preferences().set(
        customer_id, wanted, change.source, actor, wiring.current_clock().now(), if_match=tag
    )
    logger.info("preferences changed", extra={"customer_id": customer_id, "kinds": sorted(wanted)})
    return tagged_preferences(state)


@app.get("/stats", responses=documented(400))
def get_stats(
    start: Annotated[str, Query(alias="from", description="first day, YYYY-MM-DD")],
    end: Annotated[str, Query(alias="to", description="last day, YYYY-MM-DD")],
) -> StatsReport:
    from shared.adapters.stats import summary  # noqa: PLC0415 - this route only

    first, last = moment(start, "from"), moment(end, "to")
    assert first and last
    if first > last:
        raise InvalidInput("from is after to; swap them", [{"field": "from", "message": "is after to"}])
    if (last - first) > timedelta(days=MAX_STATS_DAYS):
        raise InvalidInput(f"at most {MAX_STATS_DAYS} days at a time", [{"field": "from", "message": "range too long"}])
    days = wiring.stats().days(first.date(), last.date())
    totals: Counter[str] = Counter()
    for day in days:
        totals["total"] += day["total"]
        totals.update({f"a_{k}": v for k, v in day["by_action"].items()})
        totals.update({f"r_{k}": v for k, v in day["by_reason"].items()})
        totals["rel_total"] += day["released"]
        totals.update({f"rel_{k}": v for k, v in day["released_by_action"].items()})
        totals["can_total"] += day["cancelled"]
        totals.update({f"can_{k}": v for k, v in day["cancelled_by_reason"].items()})
    return StatsReport.model_validate({"days": days, "total": summary(f"{first.date()}..{last.date()}", totals)})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


__all__ = ["handler", "json"]
