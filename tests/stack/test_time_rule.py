"""One time rule on every path: under the event clock too, /decide and /events refuse the same
event from the real future alike (shared.adapters.clock), and accept the same recorded one."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.local.stack import LocalGovernor, running


@pytest.fixture(scope="module")
def event_clock_stack() -> Iterator[LocalGovernor]:
    saved = dict(os.environ)
    with running(port=0, log_to=None, clock="event") as local:
        yield local
    os.environ.clear()
    os.environ.update(saved)


def post(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def event(event_id: str, closed_at: datetime) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "interaction_id": f"int-{event_id}",
        "customer_id": f"cust-{event_id}",
        "channel": "phone",
        "closed_at": closed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "outcome": "unresolved",
    }


def test_an_event_from_the_future_is_refused_by_decide_and_events_alike(event_clock_stack: LocalGovernor) -> None:
    # Given the event clock, and an event closing a year after the real present (the 2027)
    future = event("evt-future", datetime.now(UTC) + timedelta(days=365))
    # When it is sent to POST /decide and to POST /events
    decide_status, decided = post(f"{event_clock_stack.url}/decide", future)
    events_status, ingested = post(f"{event_clock_stack.url}/events", future)
    # Then both refuse it naming closed_at, with the same reason
    assert decide_status == 400, decided
    assert [f["field"] for f in decided["fields"]] == ["closed_at"]
    assert events_status == 202
    assert ingested["accepted"] == 0
    assert ingested["failed"][0]["fields"] == ["closed_at"]
    reason = "is in the future; send the time the interaction actually closed"
    assert reason in decided["message"]
    assert reason in ingested["failed"][0]["message"]


def test_a_recorded_event_from_last_week_is_accepted_by_decide_and_events_alike(
    event_clock_stack: LocalGovernor,
) -> None:
    # Given the event clock, and recorded events of last week
    past = datetime.now(UTC) - timedelta(days=7)
    # When one is decided through /decide and another ingested through /events
    decide_status, decided = post(f"{event_clock_stack.url}/decide", event("evt-past-1", past))
    events_status, ingested = post(f"{event_clock_stack.url}/events", event("evt-past-2", past))
    # Then both are taken, the decision as of the event's own time
    assert decide_status == 200, decided
    assert decided["decided_at"].startswith((past + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M"))
    assert (events_status, ingested["accepted"]) == (202, 1)
