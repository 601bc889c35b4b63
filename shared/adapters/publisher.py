"""Outbound events on the governor's bus, one detail-type per lifecycle state of a decision:
FollowUpSuppressed (none), FollowUpScheduled (held until its send time), FollowUpApproved
(released: send it now) and FollowUpCancelled (a pending follow-up that must not be sent).
The detail is always the whole decision, with its `state`, `state_reason` and `state_changed_at`.

Publishing happens after the commit, from the decision log's stream (shared.usecases.log_stream),
so it is at least once: a batch of stream records that fails, or a function that dies before it
answers, is read again and published again. Consumers dedupe on (`decision_id`, `state`): one
decision is announced once per state it reaches (scheduled, then approved or cancelled), each the
same on every repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.adapters import aws, retry
from shared.domain.decision import Decision, State

SOURCE = "followup.governor"
APPROVED = "FollowUpApproved"
SUPPRESSED = "FollowUpSuppressed"
SCHEDULED = "FollowUpScheduled"
CANCELLED = "FollowUpCancelled"
DETAIL_TYPES = {
    State.SUPPRESSED: SUPPRESSED,
    State.PENDING: SCHEDULED,
    State.RELEASED: APPROVED,
    State.CANCELLED: CANCELLED,
}
MAX_ENTRIES = 10  # PutEvents takes at most 10 entries a request
ATTEMPTS = 3


def entry(bus: str, decision: Decision) -> dict[str, Any]:
    return {
        "EventBusName": bus,
        "Source": SOURCE,
        "DetailType": DETAIL_TYPES[decision.state],
        "Detail": decision.model_dump_json(),
        "Resources": [],
    }


class Publisher(aws.AwsPort):
    service = "events"

    def __init__(self, bus: str, client: Any = None) -> None:
        self.bus = bus
        super().__init__(client)

    def publish(self, decisions: Sequence[Decision]) -> list[Decision]:
        """Publishes in batches of ten, retrying only the entries that failed.

        Returns the decisions still unpublished after the retries, for the caller to fail.
        """
        pending = list(decisions)
        for attempt in range(ATTEMPTS):
            if not pending:
                break
            if attempt:
                retry.backoff(attempt)  # failed entries are mostly throttling: do not hammer
            failed: list[Decision] = []
            for start in range(0, len(pending), MAX_ENTRIES):
                chunk = pending[start : start + MAX_ENTRIES]
                answer = self.client.put_events(Entries=[entry(self.bus, d) for d in chunk])
                if answer.get("FailedEntryCount"):
                    failed += [d for d, e in zip(chunk, answer["Entries"], strict=True) if e.get("ErrorCode")]
            pending = failed
        return pending
