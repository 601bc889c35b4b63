"""Customers' opt-outs, set by admins: honoured by the very next decision, recorded in the log.

A change reads the ledger, applies itself, and commits in one transaction conditioned on the
version it read (with its audit record). Two admins, or an admin and a decider, that read the
same version cannot both commit: the loser reads again and reapplies its change on top of the
winner's, so no change is lost and each audit record's before/after is what really happened.

An admin who looked at the opt-outs before changing them sends their tag (`etag`, the ETag of GET
/customers/{id}/preferences) as If-Match: the change is then made only on the opt-outs they saw. The
tag covers the opt-outs alone, not the ledger's version, which every slot-taking decision bumps: a
survey sent meanwhile is no conflict with an opt-out. The check is exact because the write is
conditioned on the version of the very read whose opt-outs matched the tag.
"""

from __future__ import annotations

import hashlib
import random
import time
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from shared.adapters import aws, decision_log, ledger
from shared.domain.contacts import OPT_OUT_KINDS, ContactLedger, OptOut
from shared.domain.decision import format_utc
from shared.domain.errors import LedgerContention, VersionConflict

ATTEMPTS = 10
BACKOFF_SECONDS = 0.02  # doubled per attempt (capped below), full jitter: racing admins spread out
MAX_BACKOFF_SECONDS = 0.5
_LOST_RACE = frozenset({"ConditionalCheckFailed", "TransactionConflict"})


def as_json(state: ContactLedger) -> dict[str, Any]:
    return {
        "customer_id": state.customer_id,
        "opt_outs": [{"kind": o.kind, "source": o.source, "at": format_utc(o.at)} for o in state.opt_outs],
    }


def etag(opt_outs: tuple[OptOut, ...]) -> str:
    """The opt-outs' tag (without the quotes an ETag header adds): equal exactly when the same kinds
    are set with the same sources and times."""
    text = "\n".join(f"{o.kind}|{format_utc(o.at)}|{o.source}" for o in sorted(opt_outs, key=lambda o: o.kind))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def applied(current: tuple[OptOut, ...], wanted: dict[str, bool], source: str, now: datetime) -> tuple[OptOut, ...]:
    """The opt-outs after setting (True) or lifting (False) the wanted kinds; others unchanged.
    A kind already set keeps its first source and time. Ordered by kind, as the ledger reads them
    back, so "nothing changed" is plain equality."""
    kept = {o.kind: o for o in current}
    for kind, on in wanted.items():
        if kind not in OPT_OUT_KINDS:
            raise ValueError(f"unknown opt-out kind {kind!r}")
        if on and kind not in kept:
            kept[kind] = OptOut(kind, source, now)
        elif not on:
            kept.pop(kind, None)
    return tuple(kept[k] for k in sorted(kept))


class Preferences(aws.AwsPort):
    def __init__(self, ledger_table: str, log_table: str, retention: timedelta, client: Any = None) -> None:
        self.ledger_table = ledger_table
        self.log_table = log_table
        self.retention = retention
        super().__init__(client)

    def get(self, customer_id: str) -> ContactLedger:
        item = self.client.get_item(TableName=self.ledger_table, Key=ledger.key(customer_id), ConsistentRead=True)
        return ledger.from_item(customer_id, item.get("Item"))

    def set(
        self,
        customer_id: str,
        wanted: dict[str, bool],
        source: str,
        actor: str,
        now: datetime,
        *,
        if_match: str | None = None,
    ) -> ContactLedger:
        """Sets the given kinds on or off (others unchanged) and records who did it, in one
        transaction conditioned on the version read; redone on a fresh read if it lost a race.
        With `if_match` (an `etag`), only while the opt-outs are still the ones it tags."""
        for attempt in range(ATTEMPTS):
            current = self.get(customer_id)
            opt_outs = applied(current.opt_outs, wanted, source, now)
            if opt_outs == current.opt_outs:
                # Already so (a retried request, or someone made the same change): nothing written,
                # nothing audited, and no conflict, whatever the tag: what was wanted holds.
                return current
            if if_match is not None and if_match != etag(current.opt_outs):
                raise VersionConflict(
                    "the opt-outs changed since you read them (someone else changed them): "
                    "GET them again, check, and send your change with the new ETag",
                    etag(current.opt_outs),
                )
            try:
                self._commit(current, opt_outs, source, actor, now)
            except ClientError as error:
                if not _lost_race(error):
                    raise
                time.sleep(random.uniform(0, min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2**attempt)))  # noqa: S311
                continue
            return ContactLedger(customer_id, current.version + 1, current.followups, opt_outs)
        raise LedgerContention(f"opt-outs of customer {customer_id} kept changing; send the change again")

    def _commit(
        self, current: ContactLedger, opt_outs: tuple[OptOut, ...], source: str, actor: str, now: datetime
    ) -> None:
        details = {"before": kinds(current.opt_outs), "after": kinds(opt_outs), "source": source}
        record = decision_log.admin_record(
            current.customer_id, "preferences_changed", actor=actor, at=now, details=details, retention=self.retention
        )
        self.client.transact_write_items(
            TransactItems=[
                {"Update": ledger.set_opt_outs(self.ledger_table, current, opt_outs, now)},
                {"Put": {"TableName": self.log_table, "Item": record}},
            ]
        )


def kinds(opt_outs: tuple[OptOut, ...]) -> list[str]:
    return sorted(o.kind for o in opt_outs)


def _lost_race(error: ClientError) -> bool:
    """The ledger changed since it was read (or another transaction held it): read again, retry."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons = error.response.get("CancellationReasons") or []
    return bool(reasons) and reasons[0].get("Code") in _LOST_RACE
