"""Shared fixtures: AWS is always moto, built from template.yaml, never a hand-written fake."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

# Set before any boto3 client exists: fake credentials, one region, no X-Ray, metrics namespace.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="FollowUpGovernorTest",
    POWERTOOLS_SERVICE_NAME="followup-governor",
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def detail(**overrides: Any) -> dict[str, Any]:
    """A valid InteractionClosed detail, closed an hour before NOW."""
    base: dict[str, Any] = {
        "event_id": "evt-1",
        "interaction_id": "int-1",
        "customer_id": "cust-1",
        "channel": "phone",
        "closed_at": (NOW - timedelta(hours=1)).isoformat(),
        "outcome": "resolved",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture
def aws() -> Iterator[Any]:
    """A fresh moto with every data resource of template.yaml, and the decide function's environment."""
    import boto3
    from moto import mock_aws

    from infra.provision import provision
    from shared import wiring

    with mock_aws():
        stack = provision(boto3.Session(region_name="us-east-1"))
        saved = dict(os.environ)
        os.environ.update(stack.environment("DecideFunction"))
        wiring.reset()
        try:
            yield stack
        finally:
            os.environ.clear()
            os.environ.update(saved)
            wiring.reset()


def put_events(stack: Any, details: list[dict[str, Any]], source: str = "helpdesk.test") -> None:
    """Puts InteractionClosed events on the template's bus, as an upstream system does."""
    import boto3

    events = boto3.client("events")
    bus = stack.names["GovernorBus"]
    for start in range(0, len(details), 10):
        entries = [
            {"EventBusName": bus, "Source": source, "DetailType": "InteractionClosed", "Detail": json.dumps(d)}
            for d in details[start : start + 10]
        ]
        answer = events.put_events(Entries=entries)
        assert answer["FailedEntryCount"] == 0, answer
