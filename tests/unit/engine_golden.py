"""The golden record of what the engine answered before issue 12 changed how it builds explanations.

`python -m tests.unit.engine_golden` wrote tests/fixtures/engine_golden.json.xz ONCE, with the code
of that time (the engine formatting every sentence while deciding, the log entry holding the whole
decision JSON). Never regenerate it with later code: it is the proof that the public answers did
not change (tests/unit/test_engine_golden.py). It holds the inputs too (events, ledgers, policies,
times), so later changes to the bench workload cannot move it.

Cases: the bench workload (bench.engine_speed.make_workload) under the default policy; a lifecycle
mix (pending follow-ups to supersede, responses, ignored surveys, failed deliveries, unreached
callbacks, opt-outs, re-closed interactions, stale events, quiet hours) under several policies
(scoped overrides, cross-kind caps, sampling, minimum handle time, excluded segments, disabled
kinds, no quiet hours); `recheck()` of held follow-ups (superseded, opted out, expired, forbidden,
released, already released); and decision log items as they were stored.
"""

from __future__ import annotations

import json
import lzma
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.domain.contacts import ContactLedger, FollowUp, OptOut
from shared.domain.decision import Action, Decision, State, decision_id_for
from shared.domain.events import InteractionClosed
from shared.domain.policy import Policy, default_policy

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "engine_golden.json.xz"
LOG_RETENTION = timedelta(days=400)

POLICIES: dict[str, dict[str, Any]] = {
    "busy": {
        "version": 7,
        "caps": {
            "survey": [{"max": 2, "days": 30}, {"max": 6, "days": 365}],
            "callback": [{"max": 2, "hours": 48}, {"max": 8, "days": 365}],
            "any": [{"max": 3, "days": 14}],
        },
        "min_gap_hours_before_survey": 24,
        "survey_sample_rate": 0.6,
        "skip": {"min_handle_seconds_for_survey": 60, "max_event_age_hours": 48},
        "excluded_segments": ["vip"],
        "survey_delay_minutes": 0,
        "fatigue": {"ignore_after_days": 3, "ignored_in_a_row": 2, "pause_days": 30},
        "survey_cooldown_after_response_days": 30,
        "quiet_hours": {"start": "21:00:00", "end": "08:00:00", "default_timezone": "Europe/Paris"},
    },
    "scoped": {
        "version": 12,
        "excluded_segments": ["vip"],
        "overrides": [
            {"scope": {"segment": "smb"}, "rules": {"enabled": {"survey": False}}},
            {"scope": {"brand": "globex"}, "rules": {"enabled": {"callback": False}}},
            {"scope": {"channel": "chat"}, "rules": {"quiet_hours": None}},
            {
                "scope": {"segment": "enterprise", "channel": "phone"},
                "rules": {"caps": {"survey": [{"max": 1, "days": 90}]}, "survey_sample_rate": 0.3},
            },
            {
                "scope": {"segment": "consumer"},
                "rules": {
                    "skip": {"min_handle_seconds_for_survey": 120, "max_event_age_hours": 24},
                    "survey_freshness_hours": 6,
                    "quiet_hours": {"start": "18:30:00", "end": "10:15:00"},
                },
            },
            {"scope": {"brand": "initech", "channel": "email"}, "rules": {"survey_delay_minutes": 600}},
        ],
    },
    "open": {
        "version": 3,
        "quiet_hours": None,
        "survey_delay_minutes": 0,
        "min_gap_hours_before_survey": 0,
        "survey_cooldown_after_response_days": 0,
        "fatigue": {"pause_days": 0},
        "caps": {
            "survey": [{"max": 3, "hours": 12}, {"max": 10, "days": 365}],
            "callback": [{"max": 1, "days": 1}, {"max": 20, "days": 365}],
            "any": [{"max": 2, "hours": 6}, {"max": 25, "days": 365}],
        },
        "callback_triggers": {"sentiment_at_or_below": None, "contact_attempts_at_least": 2},
    },
}


def policies() -> dict[str, Policy]:
    found = {"default": default_policy()}
    for name, document in POLICIES.items():
        found[name] = Policy.model_validate(document)
    return found


# --- inputs as plain JSON -------------------------------------------------------------------------


def _t(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def ledger_json(ledger: ContactLedger) -> dict[str, Any]:
    return {
        "customer_id": ledger.customer_id,
        "version": ledger.version,
        "followups": [
            [
                str(f.kind),
                _t(f.send_at),
                f.interaction_id,
                f.decision_id,
                f.state,
                _t(f.closed_at),
                _t(f.responded_at),
                f.reached,
                f.resolved,
                f.delivery_failed,
            ]
            for f in ledger.followups
        ],
        "opt_outs": [[o.kind, o.source, _t(o.at)] for o in ledger.opt_outs],
    }


def ledger_from(data: dict[str, Any]) -> ContactLedger:
    followups = tuple(
        FollowUp(
            Action(kind),
            datetime.fromisoformat(send_at),
            interaction_id,
            decision_id,
            state=state,
            closed_at=_dt(closed_at),
            responded_at=_dt(responded_at),
            reached=reached,
            resolved=resolved,
            delivery_failed=failed,
        )
        for kind, send_at, interaction_id, decision_id, state, closed_at, responded_at, reached, resolved, failed in (
            data["followups"]
        )
    )
    opt_outs = tuple(OptOut(kind, source, datetime.fromisoformat(at)) for kind, source, at in data["opt_outs"])
    return ContactLedger(data["customer_id"], data["version"], followups, opt_outs)


# --- the lifecycle mix ----------------------------------------------------------------------------

START = datetime(2026, 3, 1, tzinfo=UTC)
ZONES = ("Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "America/Los_Angeles", None)


def _detail(rng: random.Random, n: int, customer: str, interaction: str, closed_at: datetime) -> dict[str, Any]:
    zone = rng.choice(ZONES)
    stamp = closed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if rng.random() < 0.3:
        stamp += f".{rng.randint(0, 999999):06d}"
    found: dict[str, Any] = {
        "event_id": f"evt-g{n}",
        "interaction_id": interaction,
        "customer_id": customer,
        "channel": rng.choice(("phone", "chat", "email", "web", "social", "in_person")),
        "closed_at": stamp + "Z",
        "outcome": rng.choices(("resolved", "unresolved", "escalated", "abandoned"), (60, 20, 8, 12))[0],
    }
    if rng.random() < 0.7:
        found["handle_seconds"] = rng.choice((5, 45, 59, 60, 61, 119, 120, 300, 1800))
    if rng.random() < 0.5:
        found["contact_attempts"] = rng.choice((1, 2, 3, 4))
    if rng.random() < 0.4:
        found["reopen_count"] = rng.choice((0, 0, 0, 1, 2))
    if rng.random() < 0.6:
        found["sentiment"] = rng.choice((-1.0, -0.5, -0.49, 0.0, 0.3, 0.85))
    if zone:
        found["customer_timezone"] = zone
    if rng.random() < 0.5:
        found["segment"] = rng.choice(("consumer", "smb", "enterprise", "vip"))
    if rng.random() < 0.4:
        found["brand"] = rng.choice(("acme", "globex", "initech"))
    return found


def _ledger(rng: random.Random, customer: str, interaction: str, closed_at: datetime, now: datetime) -> ContactLedger:
    followups: list[FollowUp] = []
    for n in range(rng.choices((0, 1, 2, 3, 5, 8, 14), (20, 20, 15, 15, 12, 10, 8))[0]):
        kind = Action.SURVEY if rng.random() < 0.55 else Action.CALLBACK
        roll = rng.random()
        if roll < 0.15:  # pending, of an older (or, rarely, a newer) interaction
            prior_close = closed_at - timedelta(minutes=rng.choice((-30, 5, 50, 90, 600, 3000)))
            send_at = prior_close + timedelta(minutes=rng.choice((0, 30, 120, 700)))
            state = "pending"
        else:
            send_at = now - timedelta(
                days=rng.choice((0.2, 1, 2.5, 5, 6.9, 8, 12, 25, 29.5, 31, 60, 89, 120, 200, 330))
            )
            send_at -= timedelta(seconds=rng.randint(0, 86_399), microseconds=rng.choice((0, 0, 123456)))
            prior_close = send_at - timedelta(hours=rng.choice((0, 1, 3, 30)))
            state = "released"
        responded = reached = resolved = None
        failed = False
        if state == "released":
            if kind is Action.SURVEY and rng.random() < 0.3:
                responded = send_at + timedelta(hours=rng.choice((1, 20, 100)))
            elif kind is Action.CALLBACK and rng.random() < 0.3:
                reached = rng.random() < 0.6
                resolved = reached and rng.random() < 0.5
            if rng.random() < 0.08:
                failed = True
        legacy = state == "released" and rng.random() < 0.1  # stored before closed_at was kept
        followups.append(
            FollowUp(
                kind,
                send_at,
                f"{interaction}-p{n}",
                decision_id_for(customer, f"prior-{interaction}-{n}"),
                state=state,
                closed_at=None if legacy else prior_close,
                responded_at=responded,
                reached=reached,
                resolved=resolved,
                delivery_failed=failed,
            )
        )
    if rng.random() < 0.1:  # a customer who ignores surveys (fatigue)
        for n, days in enumerate(rng.sample((9, 15, 22, 40, 70, 100), rng.randint(2, 4))):
            send_at = now - timedelta(days=days, hours=n)
            followups.append(
                FollowUp(
                    Action.SURVEY,
                    send_at,
                    f"{interaction}-i{n}",
                    decision_id_for(customer, f"ignored-{interaction}-{n}"),
                    closed_at=send_at - timedelta(hours=2),
                )
            )
    if rng.random() < 0.08:  # this very interaction already followed up (re-closed)
        kind = Action.SURVEY if rng.random() < 0.7 else Action.CALLBACK
        pending = rng.random() < 0.5
        followups.append(
            FollowUp(
                kind,
                closed_at - timedelta(minutes=20) + timedelta(hours=2 if pending else 0),
                interaction,
                decision_id_for(customer, f"same-{interaction}"),
                state="pending" if pending else "released",
                closed_at=closed_at - timedelta(hours=1),
            )
        )
    opt_outs: tuple[OptOut, ...] = ()
    if rng.random() < 0.12:
        opted = rng.choice(("survey", "callback", "all"))
        opt_outs = (OptOut(opted, rng.choice(("admin", "sms-stop", "email-unsubscribe")), now - timedelta(days=3)),)
    followups.sort(key=lambda f: (f.send_at, f.decision_id))
    return ContactLedger(customer, version=len(followups) + 1, followups=tuple(followups), opt_outs=opt_outs)


def _lifecycle_cases(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    cases = []
    for n in range(count):
        customer = f"cust-g{rng.randint(1, 40)}"
        closed_at = START + timedelta(days=rng.uniform(0, 300), microseconds=0)
        closed_at = closed_at.replace(microsecond=0)
        interaction = f"int-g{n}"
        detail = _detail(rng, n, customer, interaction, closed_at)
        event_close = InteractionClosed.model_validate(detail).closed_at
        lag = timedelta(seconds=rng.choice((30, 30, 90, 1800, 4 * 3600, 20 * 3600, 50 * 3600, 80 * 3600, 100 * 3600)))
        now = event_close + lag + timedelta(microseconds=rng.choice((0, 0, 250_000, 999_999)))
        ledger = _ledger(rng, customer, interaction, event_close, now)
        policy = rng.choice(("default", "busy", "scoped", "open", "scoped"))
        cases.append({"event": detail, "ledger": ledger_json(ledger), "now": now.isoformat(), "policy": policy})
    return cases


def _hand_picked() -> list[dict[str, Any]]:
    """Edge cases the random mixes hit rarely: fatigue, a cooldown, hour-long cross-kind caps,
    several pending follow-ups superseded at once, a survey re-closed unsolved."""
    cases = []
    now = datetime(2026, 6, 10, 14, 30, 5, 250_000, tzinfo=UTC)
    customer = "cust-hand"

    def case(n: int, policy: str, followups: list[FollowUp], **fields: Any) -> None:
        detail = {
            "event_id": f"evt-h{n}",
            "interaction_id": f"int-h{n}",
            "customer_id": customer,
            "channel": "phone",
            "closed_at": (now - timedelta(seconds=30)).isoformat(),
            "outcome": "resolved",
            **fields,
        }
        ledger = ContactLedger(customer, version=len(followups) + 1, followups=tuple(followups))
        cases.append({"event": detail, "ledger": ledger_json(ledger), "now": now.isoformat(), "policy": policy})

    def survey(n: int, ago: timedelta, **fields: Any) -> FollowUp:
        sent = now - ago
        return FollowUp(
            Action.SURVEY, sent, f"int-old{n}", f"dcn_old{n}", closed_at=sent - timedelta(hours=2), **fields
        )

    def callback(n: int, ago: timedelta, **fields: Any) -> FollowUp:
        sent = now - ago
        return FollowUp(
            Action.CALLBACK, sent, f"int-old{n}", f"dcn_old{n}", closed_at=sent - timedelta(hours=1), **fields
        )

    day, hour = timedelta(days=1), timedelta(hours=1)
    ignored = [survey(1, 40 * day), survey(2, 80 * day), survey(3, 120 * day)]
    for n, policy in enumerate(("default", "busy", "scoped", "open")):
        case(n, policy, ignored)
        case(10 + n, policy, [survey(4, 10 * day, responded_at=now - 9 * day)])
        case(20 + n, policy, [callback(5, 2 * hour), survey(6, 5 * hour)], customer_timezone="Asia/Tokyo")
        case(30 + n, policy, [callback(7, 20 * hour), callback(8, 30 * hour)], outcome="unresolved")
        pending = [
            FollowUp(Action.SURVEY, now + hour, "int-p1", "dcn_p1", state="pending", closed_at=now - hour),
            FollowUp(Action.SURVEY, now + 2 * hour, "int-p2", "dcn_p2", state="pending", closed_at=now - 2 * hour),
            FollowUp(Action.CALLBACK, now + 3 * hour, "int-p3", "dcn_p3", state="pending", closed_at=now - 3 * hour),
        ]
        case(40 + n, policy, pending, outcome="abandoned")
        case(50 + n, policy, pending, segment="consumer", brand="initech", channel="email")
        same = FollowUp(Action.SURVEY, now - hour, f"int-h{60 + n}", "dcn_same", closed_at=now - 3 * hour)
        case(60 + n, policy, [same], outcome="unresolved", reopen_count=1)
        case(70 + n, policy, [callback(9, 3 * day, reached=False), survey(10, 6 * day, delivery_failed=True)])
    return cases


def _workload_cases(count: int, seed: int) -> list[dict[str, Any]]:
    from bench.engine_speed import make_workload

    details, ledgers, nows = make_workload(count, seed)
    return [
        {"event": d, "ledger": ledger_json(led), "now": now.isoformat(), "policy": "default"}
        for d, led, now in zip(details, ledgers, nows, strict=True)
    ]


def run_case(case: dict[str, Any], found: dict[str, Policy]) -> Decision:
    from shared.domain.engine import decide

    event = InteractionClosed.model_validate(case["event"])
    return decide(event, ledger_from(case["ledger"]), found[case["policy"]], datetime.fromisoformat(case["now"]))


# --- recheck --------------------------------------------------------------------------------------

SCENARIOS = ("due", "superseded", "opted_out", "late", "forbidden", "released")


def recheck_inputs(
    case: dict[str, Any], decision: Decision, scenario: str, found: dict[str, Policy]
) -> tuple[Any, Decision, ContactLedger, Policy, datetime]:
    policy = found[case["policy"]]
    now = datetime.fromisoformat(case["now"])
    assert decision.send_at is not None
    after = ledger_from(case["ledger"]).after(decision, policy.ledger_retention, now)
    followup = after.find(decision.decision_id)
    at = decision.send_at
    if scenario == "superseded":
        followup = None
    elif scenario == "opted_out":
        kind = "all" if decision.action is Action.SURVEY else "callback"
        after = ContactLedger(after.customer_id, after.version, after.followups, (OptOut(kind, "sms-stop", at),))
    elif scenario == "late":
        at = at + timedelta(hours=47, minutes=59, seconds=59, microseconds=1)
    elif scenario == "forbidden":
        policy = found["scoped"] if decision.action is Action.SURVEY else found["busy"]
        policy = policy.model_copy(update={"enabled": policy.enabled.model_copy(update={"callback": False})})
    elif scenario == "released":
        after = after.released(decision.decision_id)
        followup = after.find(decision.decision_id)
    return followup, decision, after, policy, at


def run_recheck(case: dict[str, Any], decision: Decision, scenario: str, found: dict[str, Policy]) -> str:
    from shared.domain.engine import recheck

    state, reason, checks = recheck(*recheck_inputs(case, decision, scenario, found))
    return json.dumps(
        {
            "state": str(state),
            "reason": str(reason) if reason else None,
            "checks": [c.model_dump_json() for c in checks],
        }
    )


# --- writing the fixture (once, with the code before the change) ----------------------------------


def generate() -> dict[str, Any]:
    from shared.adapters import decision_log

    found = policies()
    cases = _workload_cases(160, seed=3) + _lifecycle_cases(400, seed=12) + _hand_picked()
    rng = random.Random(5)
    items = []
    for case in cases:
        decision = run_case(case, found)
        case["decision"] = decision.model_dump_json()
        if decision.state is State.PENDING:
            case["recheck"] = {s: run_recheck(case, decision, s, found) for s in rng.sample(SCENARIOS, 3)}
        if rng.random() < 0.12:
            item = decision_log.to_item(decision, LOG_RETENTION)
            items.append({"item": item, "decision": case["decision"]})
    # An entry whose lifecycle moved on after it was written (a release updates the top level only).
    for entry in items[:6]:
        decision = Decision.model_validate_json(entry["decision"])
        if decision.state is State.PENDING:
            moved = dict(entry["item"])
            moved.update(decision_log.state_attributes(decision.with_state(State.RELEASED, None, decision.decided_at)))
            items.append({"item": moved, "decision": decision_log.from_item(moved).model_dump_json()})
    return {"policies": POLICIES, "cases": cases, "items": items}


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(lzma.decompress(FIXTURE.read_bytes()))
    return data


if __name__ == "__main__":
    data = generate()
    from collections import Counter

    reasons: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for case in data["cases"]:
        decided = json.loads(case["decision"])
        reasons.update(decided["reasons"])
        failed.update(c["rule"] for c in decided["explanation"] if not c["passed"])
        failed.update("next_eligible" for c in decided["explanation"] if c["figures"].get("next_eligible"))
        failed.update(["supersedes"] if decided["supersedes"] else [])
        for text in case.get("recheck", {}).values():
            outcomes[json.loads(text)["reason"] or "released"] += 1
    texts: Counter[str] = Counter()
    for case in data["cases"]:
        for c in json.loads(case["decision"])["explanation"]:
            for marker in (
                "within one",
                "came back unsolved",
                "inside quiet hours",
                " min ",
                "already got",
                "next eligible unknown",
                "no delay",
                "not before",
            ):
                texts[marker] += marker in c["message"]
    print(sorted(reasons.items()), sorted(failed.items()), sorted(outcomes.items()), sorted(texts.items()), sep="\n")
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_bytes(lzma.compress(json.dumps(data, separators=(",", ":")).encode(), preset=9 | lzma.PRESET_EXTREME))
    print(f"{len(data['cases'])} cases, {len(data['items'])} items, {FIXTURE.stat().st_size} bytes")
