"""Many deciders at once, threads and separate processes, over hot customers, through the real
handler against moto in server mode; then an audit of the log and the ledgers.

`make test` runs a small version; `make stress` runs 64 deciders over 1,000 events
(STRESS_EVENTS, STRESS_THREADS, STRESS_PROCESSES, STRESS_THREADS_PER_PROCESS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from shared import wiring
from shared.adapters import aws as aws_clients
from tests.conftest import detail

ROOT = Path(__file__).resolve().parents[2]
EVENTS = int(os.environ.get("STRESS_EVENTS", "200"))
THREADS = int(os.environ.get("STRESS_THREADS", "8"))
PROCESSES = int(os.environ.get("STRESS_PROCESSES", "4"))
THREADS_PER_PROCESS = int(os.environ.get("STRESS_THREADS_PER_PROCESS", "2"))
HOT_CUSTOMERS = 5

pytestmark = pytest.mark.server


@pytest.fixture
def emulated(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from infra.local import emulator
    from infra.local.provision import provision

    # The emulator in its own process: 32 decider threads here must not starve it of the interpreter
    # lock (AWS does not share the deciders' CPU either); it is the same emulator, speed-ups included.
    server, endpoint = emulator.start(own_process=True)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    aws_clients.reset_clients()
    stack = provision(boto3.Session(region_name="us-east-1"))
    for name, value in stack.environment("DecideFunction").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "ERROR")
    wiring.reset()
    try:
        yield stack
    finally:
        server.stop()
        wiring.reset()


def hot_traffic(count: int) -> list[dict[str, Any]]:
    """Mostly a handful of hot customers, every kind of outcome, all closed minutes ago."""
    now = datetime.now(UTC)
    outcomes = ["resolved", "resolved", "unresolved", "escalated", "abandoned", "resolved"]
    return [
        detail(
            event_id=f"st-{n}",
            interaction_id=f"st-i{n % (count - 7)}",
            customer_id=f"hot-{n % HOT_CUSTOMERS}",
            outcome=outcomes[n % len(outcomes)],
            closed_at=(now - timedelta(minutes=1 + n % 50)).isoformat(),
        )
        for n in range(count)
    ]


def test_many_deciders_in_threads_and_processes_never_exceed_a_cap(emulated: Any) -> None:
    # Given hot traffic on the decide queue (some interactions closed twice)
    from tests.conftest import put_events

    events = hot_traffic(EVENTS)
    put_events(emulated, events)
    url, arn = emulated.urls["DecideQueue"], emulated.arns["DecideQueue"]
    # When threads here and separate processes all decide at once
    from tests.proof.decider_worker import decide_until_empty

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.proof.decider_worker", url, arn, str(THREADS_PER_PROCESS)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    threads = [threading.Thread(target=decide_until_empty, args=(url, arn)) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    for process in processes:
        _, errors = process.communicate(timeout=600)
        assert process.returncode == 0, errors[-2000:]
        assert "handler raised" not in errors, errors[-2000:]
    from tests.proof.decider_worker import RAISED

    assert RAISED == []  # the handler never raises out of a batch
    # Then every event has exactly one decision
    decisions = logged(emulated)
    assert sorted(d["event_id"] for d in decisions) == sorted(e["event_id"] for e in events)
    # And no interaction got two follow-ups of a kind (a surveyed one reopened unsolved may get its
    # one callback), no cap or gap was exceeded for any customer, counting the approvals a newer
    # interaction did not supersede
    superseded = {s for d in decisions for s in d.get("supersedes", [])}
    approved = [d for d in decisions if d["action"] != "none" and d["decision_id"] not in superseded]
    assert len({(d["interaction_id"], d["action"]) for d in approved}) == len(approved)
    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for decision in approved:
        by_customer[decision["customer_id"]].append(decision)
    from shared.adapters import ledger

    for customer, mine in by_customer.items():
        # And every approval is in the ledger, in commit order, and the ledger holds nothing else
        item = boto3.client("dynamodb").get_item(TableName=emulated.names["LedgerTable"], Key=ledger.key(customer))
        state = ledger.from_item(customer, item.get("Item"))
        assert sorted(f.decision_id for f in state.followups) == sorted(d["decision_id"] for d in mine)
        # (one ledger write per approval, and per suppression that superseded something)
        writes = [d for d in decisions if d["customer_id"] == customer and (d["action"] != "none" or d["supersedes"])]
        assert state.version == len(writes)
        audit(customer, [(str(f.kind), f.send_at) for f in state.followups])


def logged(stack: Any) -> list[dict[str, Any]]:
    from shared.adapters import decision_log  # as the ledger below: once the stack is up

    client = boto3.client("dynamodb")
    found, start = [], None
    while True:
        page = client.scan(TableName=stack.names["DecisionLogTable"], **({"ExclusiveStartKey": start} if start else {}))
        found += [json.loads(decision_log.stored_text(i)) for i in page["Items"] if "record_type" not in i]
        start = page.get("LastEvaluatedKey")
        if not start:
            return found


def audit(customer: str, committed: list[tuple[str, datetime]]) -> None:
    """The default policy's caps over every sliding window, and the survey gap against every
    follow-up committed before the survey (a later callback may follow a survey: by design)."""
    limits = {"survey": [(timedelta(days=30), 1), (timedelta(days=365), 4)], "callback": [(timedelta(days=7), 1)]}
    for kind, windows in limits.items():
        sends = sorted(t for k, t in committed if k == kind)
        for span, cap in windows:
            for start in sends:
                assert sum(1 for t in sends if start <= t < start + span) <= cap, (customer, kind, span)
    for index, (kind, send_at) in enumerate(committed):
        if kind == "survey":
            assert all(abs(send_at - t) >= timedelta(hours=72) for _, t in committed[:index]), customer
