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

# A ledger is one DynamoDB item (400 KB at most). One follow-up takes at most FOLLOWUP_MAX_BYTES
# there (shared/adapters/ledger.py: kind, send_at, a 128-character interaction id and the decision
# id, with attribute names and list/map overhead; tests/integration/test_ledger_bound.py measures
# it), so this many keep the item under a quarter of the limit. Policy validation refuses caps
# that could collect more; `after` drops the oldest beyond it, whatever the stored policy says.
FOLLOWUP_MAX_BYTES = 240
LEDGER_BUDGET_BYTES = 100_000
MAX_FOLLOWUPS = LEDGER_BUDGET_BYTES // FOLLOWUP_MAX_BYTES


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
        kept = tuple(f for f in self.followups if f.send_at >= horizon)
        if len(kept) >= MAX_FOLLOWUPS:
            # Only a policy stored before the bound was validated, or a customer moving between
            # scopes with different caps, gets here: the oldest are the ones the fewest windows
            # still count, and a ledger past the item limit would refuse every approval for a year.
            newest = set(sorted(kept, key=lambda f: (f.send_at, f.decision_id))[len(kept) - MAX_FOLLOWUPS + 1 :])
            kept = tuple(f for f in kept if f in newest)
        return replace(self, version=self.version + 1, followups=(*kept, added))
