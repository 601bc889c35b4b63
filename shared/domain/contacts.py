"""A customer's recent follow-ups: the state the engine reads and a slot-taking write replaces."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from shared.domain.decision import Action, Decision, State
from shared.domain.outcomes import FollowUpOutcome, OutcomeType

PENDING = "pending"
RELEASED = "released"


@dataclass(frozen=True)
class FollowUp:
    kind: Action
    send_at: datetime
    interaction_id: str
    decision_id: str
    # "pending" (held until send_at, re-checked then) or "released" (handed to the senders).
    # Follow-ups stored before the lifecycle existed were all released at once.
    state: str = RELEASED
    # When its interaction closed (None for follow-ups stored before the lifecycle existed):
    # supersession compares it, freshness measures from it.
    closed_at: datetime | None = None
    # What the sending systems reported back (FollowUpOutcome).
    responded_at: datetime | None = None
    reached: bool | None = None
    resolved: bool | None = None
    delivery_failed: bool = False

    @property
    def pending(self) -> bool:
        return self.state == PENDING

    @property
    def counts_against_caps(self) -> bool:
        """A follow-up that never reached the customer (delivery failed, callback not reached)
        took none of their time, so it no longer takes a cap slot."""
        if self.delivery_failed:
            return False
        return not (self.kind is Action.CALLBACK and self.reached is False)


OPT_OUT_KINDS = ("survey", "callback", "all")

# A ledger is one DynamoDB item (400 KB at most). One follow-up takes at most FOLLOWUP_MAX_BYTES
# there (shared/adapters/ledger.py: kind, send_at, a 128-character interaction id and the decision
# id, the lifecycle and outcome attributes, with attribute names and list/map overhead;
# tests/integration/test_ledger_bound.py measures it), so this many keep the item under a third
# of the limit (416, as before the lifecycle attributes, so no policy valid then is refused now).
# Policy validation refuses caps that could collect more; `after` drops the oldest beyond it,
# whatever the stored policy says.
FOLLOWUP_MAX_BYTES = 320
LEDGER_BUDGET_BYTES = 133_120
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
    # Until when some window of the policy that took a slot may still count one: the ledger must
    # outlive it (its item's expiry). Carried across versions; only a slot-taking `after` extends it.
    # Not compared: it says how long to keep the ledger, not what it holds.
    keep_until: datetime | None = field(default=None, compare=False)

    def opted_out_of(self, kind: str) -> OptOut | None:
        """The opt-out that covers `kind` ("all" covers every kind)."""
        return next((o for o in self.opt_outs if o.kind in (kind, "all")), None)

    def of_kind(self, kind: Action) -> list[datetime]:
        """Send times of `kind` that count against the caps."""
        return [f.send_at for f in self.followups if f.kind is kind and f.counts_against_caps]

    def all_sends(self) -> list[datetime]:
        """Send times of every follow-up that counts against the caps."""
        return [f.send_at for f in self.followups if f.counts_against_caps]

    def followed_up(self, interaction_id: str) -> FollowUp | None:
        return next((f for f in self.followups if f.interaction_id == interaction_id), None)

    def of_interaction(self, interaction_id: str) -> tuple[FollowUp, ...]:
        return tuple(f for f in self.followups if f.interaction_id == interaction_id)

    def pending(self) -> tuple[FollowUp, ...]:
        return tuple(f for f in self.followups if f.pending)

    def find(self, decision_id: str) -> FollowUp | None:
        return next((f for f in self.followups if f.decision_id == decision_id), None)

    def without(self, decision_ids: Iterable[str]) -> ContactLedger:
        """This ledger with those follow-ups' slots freed, version unchanged: what a decision that
        supersedes them is decided against (the commit bumps the version once, in `after`)."""
        gone = set(decision_ids)
        if not gone:
            return self
        return replace(self, followups=tuple(f for f in self.followups if f.decision_id not in gone))

    def agreeing_with(self, log_states: Mapping[str, State | None]) -> ContactLedger:
        """This ledger, version unchanged, with each follow-up it holds as pending made to agree with
        what the decision log says became of it (`log_states`: decision id -> state, None when the
        log has no entry any more): released stays as released (it still counts), cancelled or gone
        is dropped. What a ledger that missed a release or a cancellation is decided on, so that the
        next write of it (conditioned on this version) mends it."""
        kept = []
        for f in self.followups:
            said = log_states.get(f.decision_id, State.PENDING) if f.pending else State.PENDING
            if said is State.RELEASED:
                kept.append(replace(f, state=RELEASED))
            elif said is State.PENDING:
                kept.append(f)
        return replace(self, followups=tuple(kept))

    def released(self, decision_id: str) -> ContactLedger:
        """The next version once the pending follow-up `decision_id` is handed to the senders."""
        followups = tuple(replace(f, state=RELEASED) if f.decision_id == decision_id else f for f in self.followups)
        return replace(self, version=self.version + 1, followups=followups)

    def cancelled(self, decision_id: str) -> ContactLedger:
        """The next version once the pending follow-up `decision_id` is cancelled: its slot is freed."""
        return replace(self.without((decision_id,)), version=self.version + 1)

    def with_outcome(self, outcome: FollowUpOutcome) -> ContactLedger:
        """The next version once `outcome` is recorded on its follow-up (unchanged content when the
        follow-up is no longer in the ledger; the version still moves, so the write stays conditional)."""

        def apply(f: FollowUp) -> FollowUp:
            if f.decision_id != outcome.decision_id:
                return f
            if outcome.type is OutcomeType.SURVEY_RESPONDED:
                # The first response is the one that starts the cooldown.
                at = outcome.occurred_at if f.responded_at is None else min(f.responded_at, outcome.occurred_at)
                return replace(f, responded_at=at)
            if outcome.type is OutcomeType.CALLBACK_COMPLETED:
                return replace(f, reached=outcome.reached, resolved=outcome.resolved)
            return replace(f, delivery_failed=True)

        return replace(self, version=self.version + 1, followups=tuple(apply(f) for f in self.followups))

    def after(self, decision: Decision, retention: timedelta, now: datetime) -> ContactLedger:
        """The next version of this ledger once `decision` is committed: the pending follow-ups it
        supersedes are removed and, for an approval, its own follow-up is added (pending or
        released, as the decision's state says). A suppression adds nothing (it is committed
        through here only when it supersedes something).

        Follow-ups no window can count any more are dropped, so the item stays small whatever
        the customer's history: the cost of a decision does not grow with it.
        """
        horizon = now - retention
        gone = set(decision.supersedes)
        kept = tuple(f for f in self.followups if f.send_at >= horizon and f.decision_id not in gone)
        if decision.send_at is None:
            return replace(self, version=self.version + 1, followups=kept)
        added = FollowUp(
            decision.action,
            decision.send_at,
            decision.interaction_id,
            decision.decision_id,
            state=PENDING if decision.state is State.PENDING else RELEASED,
            closed_at=decision.input.closed_at,
        )
        keep_until = max(self.keep_until or decision.send_at, decision.send_at + retention)
        if len(kept) >= MAX_FOLLOWUPS:
            # A policy stored before the bound was validated, a customer moving between scopes with
            # different caps, or many follow-ups that never reached the customer (the policy's bound
            # counts only what takes a slot) get here; a ledger past the item limit would refuse
            # every approval for a year. Dropped first: what no cap counts (a failed delivery, a
            # callback that did not reach), oldest first; only then the oldest counted, which the
            # fewest windows still count. Dropping a counted one while others take no slot would
            # let a cap be exceeded.
            by_worth = sorted(kept, key=lambda f: (f.counts_against_caps, f.send_at, f.decision_id))
            dropped = set(by_worth[: len(kept) - MAX_FOLLOWUPS + 1])
            kept = tuple(f for f in kept if f not in dropped)
        return replace(self, version=self.version + 1, followups=(*kept, added), keep_until=keep_until)
