"""The EventBridge envelopes around the InteractionClosed and FollowUpOutcome details, as their queues hold them.

Kept out of the domain: it is Powertools' EventBridge model, an edge concern.
"""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import Field

from shared.domain.events import InteractionClosed
from shared.domain.outcomes import FollowUpOutcome


class InteractionClosedEnvelope(EventBridgeModel):
    """What the decide queue holds: the EventBridge envelope around the detail.

    `account` is optional because moto's EventBridge leaves it out; nothing here needs it.
    """

    account: str | None = None  # type: ignore[assignment]
    detail_type: Literal["InteractionClosed"] = Field(..., alias="detail-type")
    detail: InteractionClosed  # type: ignore[assignment]


class FollowUpOutcomeEnvelope(EventBridgeModel):
    """What the outcomes queue holds: the EventBridge envelope around a FollowUpOutcome detail."""

    account: str | None = None  # type: ignore[assignment]
    detail_type: Literal["FollowUpOutcome"] = Field(..., alias="detail-type")
    detail: FollowUpOutcome  # type: ignore[assignment]
