"""Customers' opt-outs, set by admins: honoured by the very next decision, recorded in the log."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.adapters import aws, decision_log, ledger
from shared.domain.contacts import OPT_OUT_KINDS, ContactLedger, OptOut
from shared.domain.decision import format_utc


def as_json(state: ContactLedger) -> dict[str, Any]:
    return {
        "customer_id": state.customer_id,
        "opt_outs": [{"kind": o.kind, "source": o.source, "at": format_utc(o.at)} for o in state.opt_outs],
    }


class Preferences(aws.AwsPort):
    def __init__(self, ledger_table: str, log_table: str, retention: timedelta, client: Any = None) -> None:
        self.ledger_table = ledger_table
        self.log_table = log_table
        self.retention = retention
        super().__init__(client)

    def get(self, customer_id: str) -> ContactLedger:
        item = self.client.get_item(TableName=self.ledger_table, Key=ledger.key(customer_id), ConsistentRead=True)
        return ledger.from_item(customer_id, item.get("Item"))

    def set(self, customer_id: str, wanted: dict[str, bool], source: str, actor: str, now: datetime) -> ContactLedger:
        """Sets the given kinds on or off (others unchanged) and records who did it, in one transaction."""
        current = self.get(customer_id)
        kept = {o.kind: o for o in current.opt_outs}
        for kind in OPT_OUT_KINDS:
            if wanted.get(kind) is True and kind not in kept:
                kept[kind] = OptOut(kind, source, now)
            elif wanted.get(kind) is False:
                kept.pop(kind, None)
        opt_outs = tuple(kept[k] for k in OPT_OUT_KINDS if k in kept)
        details = {"before": sorted(kept_kinds(current)), "after": sorted(o.kind for o in opt_outs), "source": source}
        self.client.transact_write_items(
            TransactItems=[
                {"Update": ledger.set_opt_outs(self.ledger_table, customer_id, opt_outs, now)},
                {
                    "Put": {
                        "TableName": self.log_table,
                        "Item": decision_log.admin_record(
                            customer_id,
                            "preferences_changed",
                            actor=actor,
                            at=now,
                            details=details,
                            retention=self.retention,
                        ),
                    }
                },
            ]
        )
        return self.get(customer_id)


def kept_kinds(state: ContactLedger) -> list[str]:
    return [o.kind for o in state.opt_outs]
