"""Replaying logged customers through the engine under two policies (pure: no I/O, no clock).

A customer's replay needs only that customer's own log: the engine, the ledger, the held
follow-ups and the outcomes are all per customer. So customers replay one at a time, each in
time order, in any order and in any process, and the counts add up (`PartitionReplay`).

One customer, under each policy:
1. Warm-up: the ledger at the window start is what production had then, built from the LOGGED
   history before the window (nothing re-decided): the approvals (a follow-up released or
   cancelled before the start in that state, one still pending at the start as pending, held for
   its re-check), the outcomes recorded on them, the opt-outs set and lifted (admin records).
2. The window, in time order: each outcome is applied and each opt-out change set when it happened,
   each logged event is decided again (engine.decide, as of the time it was first decided), and
   every held follow-up is re-checked at its send time (engine.recheck) before anything later.
   The traffic ends; the held follow-ups still fall due (`pending` is always 0).

Counts are of the window's decisions: by action and reason, and the lifecycle (released,
cancelled by reason) of the follow-ups decided in the window. The current policy's decision of
each event is compared with what was logged (`Agreement`).
"""

from __future__ import annotations

import heapq
import math
from bisect import insort
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from shared.domain import engine
from shared.domain.contacts import PENDING, RELEASED, ContactLedger, FollowUp, OptOut
from shared.domain.decision import Action, CancelReason, Decision, DecisionInput, Reason, State, format_utc
from shared.domain.events import InteractionClosed
from shared.domain.outcomes import FollowUpOutcome
from shared.domain.policy import Policy

END_OF_TIME = datetime.max.replace(tzinfo=UTC)
SUPERSEDED = str(CancelReason.SUPERSEDED_BY_NEWER_INTERACTION)
DIFFERENCES_SHOWN = 10  # differing events named in the answer, at most
_NOTHING: frozenset[str] = frozenset()


_ID_FIELDS = ("event_id", "interaction_id", "customer_id")
# What a replayed event starts from: every field of the contract but the ids and the logged inputs.
_NO_EVENT_FIELDS = dict.fromkeys(
    name for name in InteractionClosed.model_fields if name not in _ID_FIELDS and name not in DecisionInput.model_fields
)
_EVENT_FIELDS_SET = frozenset(InteractionClosed.model_fields)
_new_event = InteractionClosed.__new__
_set = object.__setattr__


@dataclass(slots=True)  # not frozen: built once per logged item, and a frozen __init__ costs twice as much
class LoggedDecision:
    """What the replay needs of one logged decision: its event (to decide it again), and what was
    logged (to warm the ledger with it, or to compare the replay with it)."""

    decision_id: str
    event_id: str
    interaction_id: str
    customer_id: str
    decided_at: datetime
    action: Action
    reason: str
    policy_version: int
    state: State
    state_reason: str | None
    state_changed_at: datetime
    send_at: datetime | None
    inputs: Mapping[str, Any]  # every DecisionInput field (None when absent), typed: enums, aware datetimes

    def event(self) -> InteractionClosed:
        """The event again. The log holds only events the contract accepted, so it is built as
        pydantic's model_construct builds a model from trusted data, without its per-field loop
        (tests/unit/test_replay.py checks it equals the validated event)."""
        event = _new_event(InteractionClosed)
        _set(
            event,
            "__dict__",
            {
                **_NO_EVENT_FIELDS,
                "event_id": self.event_id,
                "interaction_id": self.interaction_id,
                "customer_id": self.customer_id,
                **self.inputs,
            },
        )
        _set(event, "__pydantic_fields_set__", set(_EVENT_FIELDS_SET))
        _set(event, "__pydantic_extra__", None)
        _set(event, "__pydantic_private__", None)
        return event

    def as_decision(self) -> Decision:
        """The pending decision, as far as its release-time re-check reads it (id, action, input)."""
        return Decision.model_construct(
            decision_id=self.decision_id,
            event_id=self.event_id,
            interaction_id=self.interaction_id,
            customer_id=self.customer_id,
            action=self.action,
            reasons=(Reason(self.reason),),
            explanation=(),
            policy_version=self.policy_version,
            send_at=self.send_at,
            decided_at=self.decided_at,
            input=DecisionInput.model_construct(**self.inputs),
            state=State.PENDING,
            state_changed_at=self.decided_at,
        )

    def followup(self, state: str) -> FollowUp:
        assert self.send_at is not None  # an approval always has a send time
        return FollowUp(
            self.action,
            self.send_at,
            self.interaction_id,
            self.decision_id,
            state=state,
            closed_at=self.inputs.get("closed_at"),
        )


@dataclass(frozen=True, slots=True)
class PreferenceChange:
    """An admin's change of a customer's opt-outs (an admin record of the log): the kinds opted
    out of after it."""

    customer_id: str
    at: datetime
    kinds: tuple[str, ...]
    source: str


def opt_outs_after(current: tuple[OptOut, ...], change: PreferenceChange) -> tuple[OptOut, ...]:
    """As the preferences adapter applies a change: a kind already set keeps its first source and
    time, a new one starts now, a lifted one goes; ordered by kind."""
    kept = {o.kind: o for o in current if o.kind in change.kinds}
    for kind in change.kinds:
        kept.setdefault(kind, OptOut(kind, change.source, change.at))
    return tuple(kept[k] for k in sorted(kept))


@dataclass(slots=True)
class Timeline:
    """One customer's log: the window's decisions, and the history the partition read for them."""

    customer_id: str
    decisions: list[LoggedDecision] = field(default_factory=list)  # in the window
    history: list[LoggedDecision] = field(default_factory=list)  # approvals before the window
    outcomes: list[FollowUpOutcome] = field(default_factory=list)  # before and in the window
    changes: list[PreferenceChange] = field(default_factory=list)  # before and in the window


def warm_ledger(timeline: Timeline, start: datetime) -> tuple[ContactLedger, list[LoggedDecision]]:
    """The customer's ledger at `start` as production had it, from the logged history before it,
    and the follow-ups still pending then (their re-check falls in the window)."""
    steps: list[tuple[datetime, int, Any]] = [(d.decided_at, 2, d) for d in timeline.history if d.decided_at < start]
    steps += [(o.occurred_at, 0, o) for o in timeline.outcomes if o.occurred_at < start]
    steps += [(c.at, 1, c) for c in timeline.changes if c.at < start]
    steps.sort(key=lambda s: (s[0], s[1]))
    followups: dict[str, FollowUp] = {}
    opt_outs: tuple[OptOut, ...] = ()
    pending: list[LoggedDecision] = []
    for _, _, step in steps:
        if isinstance(step, LoggedDecision):
            if step.action is Action.NONE or step.send_at is None:
                continue
            settled_before = step.state_changed_at < start and step.state in (State.RELEASED, State.CANCELLED)
            if settled_before and step.state is State.CANCELLED:
                continue  # its slot was freed before the window
            if settled_before:
                followups[step.decision_id] = step.followup(RELEASED)
            else:
                followups[step.decision_id] = step.followup(PENDING)
                pending.append(step)
        elif isinstance(step, PreferenceChange):
            opt_outs = opt_outs_after(opt_outs, step)
        else:
            found = followups.get(step.decision_id)
            if found is not None and not found.pending and step.type.fits(found.kind):
                ledger = ContactLedger(timeline.customer_id, 0, (found,)).with_outcome(step)
                followups[step.decision_id] = ledger.followups[0]
    return ContactLedger(timeline.customer_id, 0, tuple(followups.values()), opt_outs), pending


@dataclass(slots=True)
class Tally:
    """One policy's counts (the answer's `current` / `candidate`, without the version)."""

    by_action: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)
    released: Counter[str] = field(default_factory=Counter)  # by action
    cancelled: Counter[str] = field(default_factory=Counter)  # by CancelReason
    outcomes_applied: int = 0
    pending: int = 0

    def add(self, other: Tally) -> None:
        self.by_action.update(other.by_action)
        self.by_reason.update(other.by_reason)
        self.released.update(other.released)
        self.cancelled.update(other.cancelled)
        self.outcomes_applied += other.outcomes_applied
        self.pending += other.pending

    def summary(self, version: int) -> dict[str, Any]:
        return {
            "version": version,
            "by_action": dict(self.by_action),
            "by_reason": dict(self.by_reason),
            "released": sum(self.released.values()),
            "cancelled": sum(self.cancelled.values()),
            "cancelled_by_reason": {k: v for k, v in sorted(self.cancelled.items()) if v},
            "pending": self.pending,
            "outcomes_applied": self.outcomes_applied,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "by_action": dict(self.by_action),
            "by_reason": dict(self.by_reason),
            "released": dict(self.released),
            "cancelled": dict(self.cancelled),
            "outcomes_applied": self.outcomes_applied,
            "pending": self.pending,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tally:
        return cls(
            Counter(data["by_action"]),
            Counter(data["by_reason"]),
            Counter(data["released"]),
            Counter(data["cancelled"]),
            int(data["outcomes_applied"]),
            int(data["pending"]),
        )


class _Side:
    """One policy replaying one customer at a time, into its tally."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.retention = policy.ledger_retention
        self.tally = Tally()  # the partition's counts: every customer adds to it
        self.released = self.cancelled = self.outcomes = 0
        self.ledger = ContactLedger("")
        self.held: list[tuple[datetime, str, Decision]] = []  # pending follow-ups by send time
        self.warm: frozenset[str] = frozenset()  # decided before the window: not counted

    def begin(self, ledger: ContactLedger, pending: Sequence[LoggedDecision], start: datetime) -> None:
        """Starts a customer: its ledger at the window start, its follow-ups pending then."""
        self.released = self.cancelled = self.outcomes = 0  # the customer's, for the estimate's errors
        self.ledger = ledger
        if not pending:
            self.held, self.warm = [], _NOTHING
            return
        self.held = [(max(d.send_at or start, start), d.decision_id, d.as_decision()) for d in pending]
        heapq.heapify(self.held)
        self.warm = frozenset(d.decision_id for d in pending)

    def settle(self, until: datetime) -> None:
        """Re-checks, in send-time order, every held follow-up due by `until`, as its schedule would."""
        held = self.held
        while held and held[0][0] <= until:
            at, decision_id, decision = heapq.heappop(held)
            followup = self.ledger.find(decision_id)
            if followup is None or not followup.pending:
                continue  # superseded at decision time: counted then
            state, reason, _ = engine.recheck(followup, decision, self.ledger, self.policy, at)
            counted = decision_id not in self.warm
            if state is State.RELEASED:
                self.ledger = self.ledger.released(decision_id)
                if counted:
                    self.tally.released[decision.action] += 1
                    self.released += 1
            else:
                self.ledger = self.ledger.cancelled(decision_id)
                if counted:
                    self.tally.cancelled[str(reason)] += 1
                    self.cancelled += 1

    def record(self, outcome: FollowUpOutcome) -> None:
        """An outcome counts only for a follow-up this policy released: no one answers a survey
        they were never sent."""
        followup = self.ledger.find(outcome.decision_id)
        if followup is None or followup.pending or not outcome.type.fits(followup.kind):
            return
        self.ledger = self.ledger.with_outcome(outcome)
        self.tally.outcomes_applied += 1
        self.outcomes += 1

    def change(self, change: PreferenceChange) -> None:
        self.ledger = replace(self.ledger, opt_outs=opt_outs_after(self.ledger.opt_outs, change))

    def decide(self, event: InteractionClosed, at: datetime) -> Decision:
        decision = engine.decide(event, self.ledger, self.policy, at)
        if decision.approved or decision.supersedes:
            self.ledger = self.ledger.after(decision, self.retention, at)
        tally = self.tally
        if decision.supersedes:
            superseded = sum(1 for d in decision.supersedes if d not in self.warm)
            if superseded:
                tally.cancelled[SUPERSEDED] += superseded
                self.cancelled += superseded
        action = decision.action
        if decision.state is State.PENDING and decision.send_at is not None:
            heapq.heappush(self.held, (decision.send_at, decision.decision_id, decision))
        elif decision.state is State.RELEASED:
            tally.released[action] += 1
            self.released += 1
        tally.by_action[action] += 1
        tally.by_reason[decision.reasons[0]] += 1
        return decision

    def end(self) -> None:
        self.settle(END_OF_TIME)  # the traffic ends; its held follow-ups still fall due
        self.tally.pending += len(self.held)


@dataclass(slots=True)
class Agreement:
    """The current policy's replay against what was logged, event by event."""

    matching: int = 0
    other_policy_version: int = 0  # differ, and were logged under another version than the current
    unexplained: int = 0  # differ under the same version
    unexplained_sample: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: Agreement) -> None:
        self.matching += other.matching
        self.other_policy_version += other.other_policy_version
        self.unexplained += other.unexplained
        self.unexplained_sample = sorted(
            [*self.unexplained_sample, *other.unexplained_sample], key=lambda e: (e["decided_at"], e["event_id"])
        )[:DIFFERENCES_SHOWN]

    def as_json(self) -> dict[str, Any]:
        return {
            "matching": self.matching,
            "other_policy_version": self.other_policy_version,
            "unexplained": self.unexplained,
            "unexplained_sample": self.unexplained_sample,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Agreement:
        return cls(
            int(data["matching"]),
            int(data["other_policy_version"]),
            int(data["unexplained"]),
            list(data["unexplained_sample"]),
        )


@dataclass(slots=True)
class Logged:
    """What the log holds for the window's decisions: the counts the replay is compared with."""

    by_action: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)
    by_policy_version: Counter[str] = field(default_factory=Counter)
    by_state: Counter[str] = field(default_factory=Counter)  # of approvals: released, cancelled, pending
    cancelled_by_reason: Counter[str] = field(default_factory=Counter)
    days: set[date] = field(default_factory=set)  # UTC days with a logged decision in the window

    def count(self, d: LoggedDecision) -> None:
        self.by_action[str(d.action)] += 1
        self.by_reason[d.reason] += 1
        self.by_policy_version[str(d.policy_version)] += 1
        if d.action is not Action.NONE:
            self.by_state[str(d.state)] += 1
            if d.state is State.CANCELLED and d.state_reason:
                self.cancelled_by_reason[d.state_reason] += 1
        self.days.add(d.decided_at.date())

    def add(self, other: Logged) -> None:
        for mine, theirs in (
            (self.by_action, other.by_action),
            (self.by_reason, other.by_reason),
            (self.by_policy_version, other.by_policy_version),
            (self.by_state, other.by_state),
            (self.cancelled_by_reason, other.cancelled_by_reason),
        ):
            mine.update(theirs)
        self.days |= other.days

    def as_json(self) -> dict[str, Any]:
        return {
            "by_action": dict(self.by_action),
            "by_reason": dict(self.by_reason),
            "by_policy_version": dict(self.by_policy_version),
            "by_state": dict(self.by_state),
            "cancelled_by_reason": dict(self.cancelled_by_reason),
            "days": sorted(d.isoformat() for d in self.days),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Logged:
        return cls(
            Counter(data["by_action"]),
            Counter(data["by_reason"]),
            Counter(data["by_policy_version"]),
            Counter(data["by_state"]),
            Counter(data["cancelled_by_reason"]),
            {date.fromisoformat(d) for d in data["days"]},
        )


@dataclass(slots=True)
class WarmUp:
    """What the ledgers were warmed with, and the earliest of it (how far back the log reached)."""

    approvals: int = 0
    pending_at_start: int = 0
    outcomes: int = 0
    preference_changes: int = 0
    first_day: str | None = None

    def add(self, other: WarmUp) -> None:
        self.approvals += other.approvals
        self.pending_at_start += other.pending_at_start
        self.outcomes += other.outcomes
        self.preference_changes += other.preference_changes
        days = [d for d in (self.first_day, other.first_day) if d]
        self.first_day = min(days) if days else None

    def as_json(self) -> dict[str, Any]:
        return {
            "approvals": self.approvals,
            "pending_at_start": self.pending_at_start,
            "outcomes": self.outcomes,
            "preference_changes": self.preference_changes,
            "first_day": self.first_day,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WarmUp:
        return cls(**data)


@dataclass(slots=True)
class Replayed:
    """Everything a set of replayed customers adds to the answer; results of disjoint sets of
    customers add up (`add`), in any order, to the result of their union."""

    customers: int = 0
    events: int = 0
    changed_events: int = 0
    current: Tally = field(default_factory=Tally)
    candidate: Tally = field(default_factory=Tally)
    logged: Logged = field(default_factory=Logged)
    agreement: Agreement = field(default_factory=Agreement)
    warm_up: WarmUp = field(default_factory=WarmUp)
    # The first `sample_size` customers whose outcome changes, by their first change (time, event id).
    sample: list[tuple[str, str, str, list[dict[str, Any]]]] = field(default_factory=list)
    # Per-customer sums of squares of every count: the sampling error of an estimate from a share
    # of the customers (shared.domain.estimate).
    squares: Counter[str] = field(default_factory=Counter)

    def add(self, other: Replayed, sample_size: int) -> None:
        self.customers += other.customers
        self.events += other.events
        self.changed_events += other.changed_events
        self.current.add(other.current)
        self.candidate.add(other.candidate)
        self.logged.add(other.logged)
        self.agreement.add(other.agreement)
        self.warm_up.add(other.warm_up)
        self.sample = sorted([*self.sample, *other.sample])[:sample_size]
        self.squares.update(other.squares)

    def as_json(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "events": self.events,
            "changed_events": self.changed_events,
            "current": self.current.as_json(),
            "candidate": self.candidate.as_json(),
            "logged": self.logged.as_json(),
            "agreement": self.agreement.as_json(),
            "warm_up": self.warm_up.as_json(),
            "sample": [list(s) for s in self.sample],
            "squares": dict(self.squares),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Replayed:
        return cls(
            int(data["customers"]),
            int(data["events"]),
            int(data["changed_events"]),
            Tally.from_json(data["current"]),
            Tally.from_json(data["candidate"]),
            Logged.from_json(data["logged"]),
            Agreement.from_json(data["agreement"]),
            WarmUp.from_json(data["warm_up"]),
            [(str(a), str(b), str(c), list(d)) for a, b, c, d in data["sample"]],
            Counter(data["squares"]),
        )


class PartitionReplay:
    """Replays customers one at a time under the current and the candidate policy."""

    def __init__(
        self, current: Policy, candidate: Policy, start: datetime, sample_size: int, *, squares: bool = True
    ) -> None:
        self.start = start
        self.sample_size = sample_size
        self.squares = squares  # per-customer sums of squares, for an estimate from some partitions
        self.result = Replayed()
        self.current_version = current.version
        self._current = _Side(current)
        self._candidate = _Side(candidate)
        self._current.tally, self._candidate.tally = self.result.current, self.result.candidate

    def replay(self, timeline: Timeline) -> int:
        """Replays one customer; returns how many of its events were decided again."""
        result, start = self.result, self.start
        now, then = self._current, self._candidate
        if timeline.history or timeline.outcomes or timeline.changes:
            ledger, pending = warm_ledger(timeline, start)
            self._count_warm_up(timeline, pending)
            steps = _steps(timeline, start)
        else:  # most customers: nothing but their decisions in the window, already in time order
            ledger, pending = ContactLedger(timeline.customer_id), []
            steps = [(d.decided_at, 2, d) for d in timeline.decisions]
        now.begin(ledger, pending, start)
        then.begin(ledger, pending, start)
        changed: list[tuple[LoggedDecision, Decision, Decision]] = []
        decided: list[tuple[LoggedDecision, Decision, Decision]] = []
        for at, kind, step in steps:
            if now.held and now.held[0][0] <= at:
                now.settle(at)
            if then.held and then.held[0][0] <= at:
                then.settle(at)
            if kind == 2:
                event = step.event()
                old = now.decide(event, at)
                new = then.decide(event, at)
                self._compare(step, old)
                decided.append((step, old, new))
                if old.action != new.action or old.reasons[0] != new.reasons[0]:
                    changed.append((step, old, new))
            elif kind == 0:
                now.record(step)
                then.record(step)
            else:
                now.change(step)
                then.change(step)
        now.end()
        then.end()
        result.customers += 1
        result.events += len(decided)
        result.changed_events += len(changed)
        if changed and self.sample_size:
            first = changed[0][0]
            key = (format_utc(first.decided_at), first.event_id, timeline.customer_id)
            if len(result.sample) < self.sample_size or key < result.sample[-1][:3]:
                insort(result.sample, (*key, [_changed(*c) for c in changed]))
                del result.sample[self.sample_size :]
        if self.squares:
            squares = result.squares
            for name, value in _counts(decided, len(changed), now, then):
                squares[name] += value * value
        return len(decided)

    def _compare(self, logged: LoggedDecision, replayed: Decision) -> None:
        self.result.logged.count(logged)
        agreement = self.result.agreement
        if replayed.action is logged.action and replayed.reasons[0] == logged.reason:
            agreement.matching += 1
        elif logged.policy_version != self.current_version:
            agreement.other_policy_version += 1
        else:
            agreement.unexplained += 1
            # Keep the earliest examples by (decided_at, event_id), whatever order customers are replayed in,
            # so a partitioned job and a synchronous run name the same sample.
            example = {
                "event_id": logged.event_id,
                "customer_id": logged.customer_id,
                "decided_at": format_utc(logged.decided_at),
                "logged": {"action": str(logged.action), "reason": logged.reason},
                "replayed": {"action": str(replayed.action), "reason": str(replayed.reason)},
            }
            sample = agreement.unexplained_sample
            key = (example["decided_at"], example["event_id"])
            if len(sample) < DIFFERENCES_SHOWN or key < (sample[-1]["decided_at"], sample[-1]["event_id"]):
                insort(sample, example, key=lambda e: (e["decided_at"], e["event_id"]))
                del sample[DIFFERENCES_SHOWN:]

    def _count_warm_up(self, timeline: Timeline, pending: Sequence[LoggedDecision]) -> None:
        warm = self.result.warm_up
        history = [d for d in timeline.history if d.decided_at < self.start and d.action is not Action.NONE]
        outcomes = [o for o in timeline.outcomes if o.occurred_at < self.start]
        changes = [c for c in timeline.changes if c.at < self.start]
        warm.approvals += len(history)
        warm.pending_at_start += len(pending)
        warm.outcomes += len(outcomes)
        warm.preference_changes += len(changes)
        moments = [d.decided_at for d in history] + [o.occurred_at for o in outcomes] + [c.at for c in changes]
        if moments:
            day = f"{min(moments):%Y-%m-%d}"
            warm.first_day = min(warm.first_day, day) if warm.first_day else day


def _steps(timeline: Timeline, start: datetime) -> list[tuple[datetime, int, Any]]:
    """The window's decisions, outcomes (0) and opt-out changes (1) in time order; at the same
    instant outcomes and changes come first, as they were recorded before the event was decided."""
    steps: list[tuple[datetime, int, str, Any]] = [
        (d.decided_at, 2, d.event_id, d) for d in timeline.decisions if d.decided_at >= start
    ]
    steps += [(o.occurred_at, 0, o.outcome_id, o) for o in timeline.outcomes if o.occurred_at >= start]
    steps += [(c.at, 1, "", c) for c in timeline.changes if c.at >= start]
    steps.sort(key=lambda s: (s[0], s[1], s[2]))
    return [(at, kind, step) for at, kind, _, step in steps]


def _changed(logged: LoggedDecision, old: Decision, new: Decision) -> dict[str, Any]:
    return {
        "event_id": logged.event_id,
        "closed_at": logged.inputs["closed_at"].isoformat(),
        "current": {"action": str(old.action), "reason": str(old.reason)},
        "candidate": {"action": str(new.action), "reason": str(new.reason)},
    }


def replay_all(
    timelines: Iterable[Timeline], current: Policy, candidate: Policy, start: datetime, sample_size: int = 20
) -> Replayed:
    """Every customer of `timelines`, replayed (what one partition, or the whole window, adds up to)."""
    replay = PartitionReplay(current, candidate, start, sample_size)
    for timeline in timelines:
        replay.replay(timeline)
    return replay.result


def _counts(
    decided: Sequence[tuple[LoggedDecision, Decision, Decision]], changed: int, current: _Side, candidate: _Side
) -> Iterable[tuple[str, int]]:
    """One customer's counts, by the flat names the estimate reports (`current.by_action.survey`)."""
    yield "events", len(decided)
    yield "changed_events", changed
    counts: Counter[str] = Counter()
    for logged, old, new in decided:
        counts[f"logged.by_action.{logged.action}"] += 1
        counts[f"logged.by_reason.{logged.reason}"] += 1
        for side, decision, sign in (("current", old, -1), ("candidate", new, 1)):
            counts[f"{side}.by_action.{decision.action}"] += 1
            counts[f"{side}.by_reason.{decision.reasons[0]}"] += 1
            counts[f"difference.by_action.{decision.action}"] += sign
            counts[f"difference.by_reason.{decision.reasons[0]}"] += sign
    for side, run in (("current", current), ("candidate", candidate)):
        counts[f"{side}.released"] = run.released
        counts[f"{side}.cancelled"] = run.cancelled
        counts[f"{side}.outcomes_applied"] = run.outcomes
    yield from ((name, value) for name, value in counts.items() if value)


def standard_error(squares: float, fraction: float) -> float:
    """The standard error of a total estimated as (sum over a Bernoulli sample of customers, each
    in with probability `fraction`) / fraction, from the sample's sum of squares (Horvitz-Thompson)."""
    if fraction >= 1:
        return 0.0
    return math.sqrt((1 - fraction) * squares) / fraction
