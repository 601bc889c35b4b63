"""`governor local`'s life: where it says it serves, a prompt stop, and its state across restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local import state_file
from infra.local.stack import ROOT, running


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    saved = dict(os.environ)
    monkeypatch.setenv("GOVERNOR_STATE_DIR", str(tmp_path))
    yield tmp_path
    os.environ.clear()  # the stack points this process's AWS settings at its emulator
    os.environ.update(saved)


def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null"), answer.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), error.headers


def test_a_running_stack_says_where_it_serves_and_forgets_it_when_stopped(state_dir: Path) -> None:
    # Given no stack running
    assert state_file.read() is None
    # When one starts on a free port
    with running(port=0, log_to=None) as stack:
        address = state_file.read()
        # Then the state file names its URL, its emulator, this process and how it keeps its state
        assert address is not None
        assert (address.url, address.moto_endpoint, address.pid) == (stack.url, stack.moto_endpoint, os.getpid())
        assert (address.clock, address.state, address.state_dir) == ("wall", "ephemeral", str(state_dir))
        assert state_file.state_path() == state_dir / "local.json"
    # And once stopped the file is gone
    assert not (state_dir / "local.json").exists()
    assert state_file.read() is None


def test_a_state_file_left_by_a_dead_process_is_ignored_and_another_stacks_is_not_removed(state_dir: Path) -> None:
    # Given a state file written by a process that no longer exists (killed with SIGKILL)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    pid = int(dead.stdout)
    address = state_file.LocalAddress(
        "http://127.0.0.1:1", "http://127.0.0.1:2", pid, "2026-11-30T00:00:00Z", "wall", "ephemeral", str(state_dir)
    )
    state_file.write(address)
    # When it is read, Then it counts as no stack
    assert state_file.read() is None
    # And another process's stop does not remove it
    assert not state_file.remove_if_ours(os.getpid())
    assert state_file.state_path().exists()


def test_sigterm_mid_replay_stops_governor_local_promptly_with_exit_code_0(tmp_path: Path) -> None:
    # Given `governor local` replaying the sample on the event clock
    env = {**os.environ, "GOVERNOR_STATE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    log = tmp_path / "stderr.txt"
    with log.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "local", "--port", "0", "--clock", "event", "--ephemeral"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            deadline = time.monotonic() + 120
            while "replaying" not in log.read_text() and time.monotonic() < deadline:
                assert process.poll() is None, log.read_text()
                time.sleep(0.2)
            assert (tmp_path / "local.json").exists()
            # When it gets SIGTERM in the middle of the replay
            process.send_signal(signal.SIGTERM)
            # Then it exits 0 well within a bound on a hang (not a speed test), and forgets its address
            code = process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert code == 0, log.read_text()
    assert "stopping" in log.read_text()
    assert not (tmp_path / "local.json").exists()


def test_opt_outs_and_policy_versions_survive_a_restart_and_ephemeral_starts_empty(state_dir: Path) -> None:
    # Given a kept stack where a customer was opted out and a policy applied
    with running(port=0, log_to=None, persist=True) as stack:
        assert stack.state_note.startswith("state: new")
        status, _, _ = call(
            "PUT", f"{stack.url}/customers/cust-kept/preferences", {"survey": True, "source": "complaint 7"}
        )
        assert status == 200
        _, current, headers = call("GET", f"{stack.url}/policy")
        document = current["policy"]
        status, applied, _ = call(
            "PUT", f"{stack.url}/policy", {"policy": document, "comment": "kept"}, {"If-Match": headers["ETag"]}
        )
        assert status == 200, applied
        version = applied["version"]
    assert (state_dir / "moto-state.pickle").exists()
    # When it starts again
    with running(port=0, log_to=None, persist=True) as again:
        # Then both are there, and it says what it restored
        _, preferences, _ = call("GET", f"{again.url}/customers/cust-kept/preferences")
        _, policy, _ = call("GET", f"{again.url}/policy")
        assert [o["kind"] for o in preferences["opt_outs"]] == ["survey"]
        assert policy["version"] == version
        assert again.state_note == (
            f"state: restored from {state_dir / 'moto-state.pickle'} (0 decisions, policy v{version})"
        )
    # And an ephemeral stack starts empty, says so, and keeps nothing
    before = (state_dir / "moto-state.pickle").stat().st_mtime_ns
    with running(port=0, log_to=None) as empty:
        _, preferences, _ = call("GET", f"{empty.url}/customers/cust-kept/preferences")
        _, policy, _ = call("GET", f"{empty.url}/policy")
        assert preferences["opt_outs"] == []
        assert policy["version"] == 0
        assert empty.state_note == "state: ephemeral, nothing is kept"
    assert (state_dir / "moto-state.pickle").stat().st_mtime_ns == before
