"""A customer's recent follow-ups: the state the engine reads and a slot-taking write replaces."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from shared.domain.decision import Action, Decision


@dataclass(frozen=True)
class FollowUp:
    kind: Action
    send_at: datetime
    interaction_id: str
    decision_id: str


OPT_OUT_KINDS = ("survey", "callback", "all")


@dataclass(frozen=True)
class OptOut:
    """A customer's "do not contact me" for one kind of follow-up (or all), with where it came from."""

    kind: str  # survey | callback | all
    source: str
    at: datetime


@dataclass(frozen=True)
class ContactLedger:
    """Approved follow-ups any window can still count, plus the version the conditional write checks.

    Version 0 means the customer has no ledger item yet.
    """

    customer_id: str
    version: int = 0
    followups: tuple[FollowUp, ...] = field(default_factory=tuple)
    opt_outs: tuple[OptOut, ...] = field(default_factory=tuple)

    def opted_out_of(self, kind: str) -> OptOut | None:
        """The opt-out that covers `kind` ("all" covers every kind)."""
        return next((o for o in self.opt_outs if o.kind in (kind, "all")), None)

    def of_kind(self, kind: Action) -> list[datetime]:
        return [f.send_at for f in self.followups if f.kind is kind]

    def all_sends(self) -> list[datetime]:
        return [f.send_at for f in self.followups]

    def followed_up(self, interaction_id: str) -> FollowUp | None:
        return next((f for f in self.followups if f.interaction_id == interaction_id), None)

    def after(self, decision: Decision, retention: timedelta, now: datetime) -> ContactLedger:
        """The next version of this ledger once `decision` (an approval) is committed.

        Follow-ups no window can count any more are dropped, so the item stays small whatever
        the customer's history: the cost of a decision does not grow with it.
        """
        assert decision.send_at is not None, "only approvals take a slot"
        added = FollowUp(decision.action, decision.send_at, decision.interaction_id, decision.decision_id)
        horizon = now - retention
        kept = tuple(f for f in (*self.followups, added) if f.send_at >= horizon)
        return replace(self, version=self.version + 1, followups=kept)
