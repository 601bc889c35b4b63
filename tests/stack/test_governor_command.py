"""The `governor` command itself: `replay --in-process`, and `local` as a separate process."""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.app import governor
from tests.conftest import detail

pytestmark = pytest.mark.server


def fresh(**overrides: Any) -> dict[str, Any]:
    return detail(closed_at=(datetime.now(UTC) - timedelta(minutes=5)).isoformat(), **overrides)


def test_replay_in_process_with_the_event_clock_decides_recorded_traffic_as_it_happened(tmp_path: Path) -> None:
    # Given two solved interactions of one customer recorded three weeks ago, a day apart
    lines = [
        detail(event_id="old-1", interaction_id="old-i1", customer_id="old-c1", closed_at="2026-01-05T10:00:00Z"),
        detail(event_id="old-2", interaction_id="old-i2", customer_id="old-c1", closed_at="2026-01-06T10:00:00Z"),
    ]
    source = tmp_path / "january.ndjson"
    source.write_text("\n".join(json.dumps(line) for line in lines))
    # When they are replayed in-process under the event clock
    result = CliRunner().invoke(governor, ["replay", str(source), "--in-process", "--clock", "event"])
    assert result.exit_code == 0, result.stderr
    printed = result.stdout + result.stderr
    # Then they are not stale: the first gets a survey, the second is capped, as it would have been live
    assert "SURVEY_ELIGIBLE" in printed and "SURVEY_CAP_REACHED" in printed
    assert "STALE_EVENT" not in printed


def test_governor_local_replays_the_sample_serves_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    import signal
    import socket
    import subprocess
    import time

    from infra.local.stack import ROOT

    # Given a small sample file and a free port
    sample = tmp_path / "sample.ndjson"
    sample.write_text(json.dumps(fresh(event_id="cl-1", interaction_id="cl-i1", customer_id="cl-c1")) + "\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "PYTHONPATH")}
    env["GOVERNOR_STATE_DIR"] = str(tmp_path / "state")
    # When the installed `governor local` starts
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "governor"), "local", "--port", str(port), "--sample", str(sample)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline() if process.stdout else ""
            lines.append(line)
            if "Ctrl-C stops." in line or not line:
                break
        printed = "".join(lines)
        # Then it replays the sample, prints the URL and example commands, and serves
        assert f"http://127.0.0.1:{port}" in printed
        assert "replaying 1 events" in printed
        assert "curl -s -X POST" in printed and "governor decisions" in printed
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
            assert json.loads(answer.read())["status"] == "ok"
        # And another command finds it without flags
        found = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "governor"), "decisions", "--customer", "cl-c1", "-o", "ndjson"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout.splitlines()[0])["event_id"] == "cl-1"
        # And Ctrl-C stops everything cleanly
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
