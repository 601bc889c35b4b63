"""`make run`'s main job: the sample replayed through EventBridge, SQS and the decide function
on moto in server mode, summarised by action and reason."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from infra import local_run
from tests.conftest import detail


@pytest.fixture
def restore_environment() -> Any:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    from shared import wiring

    wiring.reset()


@pytest.mark.server
def test_make_run_replays_a_file_and_prints_decisions_by_action_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_environment: Any
) -> None:
    # Given a file with two solved interactions of one customer a day apart, an unsolved one,
    # a duplicate delivery of the first, and one malformed event
    first = detail(event_id="e-1", interaction_id="i-1", customer_id="c-1", closed_at="2026-11-02T10:00:00Z")
    lines = [
        first,
        detail(event_id="e-2", interaction_id="i-2", customer_id="c-1", closed_at="2026-11-03T10:00:00Z"),
        detail(
            event_id="e-3",
            interaction_id="i-3",
            customer_id="c-2",
            closed_at="2026-11-03T11:00:00Z",
            outcome="escalated",
        ),
        first,
        detail(
            event_id="e-4", interaction_id="i-4", customer_id="c-3", closed_at="2026-11-03T12:00:00Z", channel="fax"
        ),
    ]
    sample = tmp_path / "events.ndjson"
    sample.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    # When `make run` replays it (event clock: each decided as of its closed_at)
    assert local_run.main([str(sample)]) == 0
    printed = capsys.readouterr().out
    # Then three valid events get one decision each, the duplicate none, and the summary says why
    assert "5 events sent, 3 decisions logged" in printed
    rows = {tuple(line.split()[:3]) for line in printed.splitlines()}
    assert ("survey", "SURVEY_ELIGIBLE", "1") in rows
    assert ("none", "SURVEY_CAP_REACHED", "1") in rows
    assert ("callback", "CALLBACK_ESCALATED", "1") in rows
    assert "suppression rate: 33.3%" in printed
    # And the malformed event is reported parked, by field
    assert "detail.channel: 1" in printed
