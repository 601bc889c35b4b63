"""The installed `governor` entry point as a user runs it: a separate process, no flags, the README's examples.

One local stack (event clock, the sample replayed, as `make run` leaves it) on a free port; its
address is in a state file in a temporary GOVERNOR_STATE_DIR, the way `governor local` announces it,
so no command here passes --url.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.local.stack import ROOT, LocalGovernor, running

pytestmark = pytest.mark.server

GOVERNOR = ROOT / ".venv" / "bin" / "governor"
README = ROOT / "README.md"


@dataclass
class Installed:
    stack: LocalGovernor
    home: Path  # a working directory with the checkout's infra/ and .venv/, for relative paths
    env: dict[str, str]

    def run(self, line: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/bash", "-o", "pipefail", "-c", line],
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    from infra.local import state_file

    state_dir = tmp_path_factory.mktemp("state")
    home = tmp_path_factory.mktemp("home")
    for name in ("infra", ".venv", "docs"):
        (home / name).symlink_to(ROOT / name)
    saved = dict(os.environ)
    os.environ["GOVERNOR_STATE_DIR"] = str(state_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVERNOR_", "AWS_ENDPOINT"))}
    env |= {
        "GOVERNOR_STATE_DIR": str(state_dir),
        "PATH": f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
        "NO_COLOR": "1",
    }
    env.pop("PYTHONPATH", None)  # the entry point finds the project by itself
    with running(port=0, clock="event", log_to=None) as stack:
        # The address as `governor local` writes it (written here too in case this stack does not).
        state_file.write(
            state_file.LocalAddress(
                url=stack.url,
                moto_endpoint=stack.moto_endpoint,
                pid=os.getpid(),
                started_at=datetime.now(UTC).isoformat(),
                clock="event",
                state="ephemeral",
                state_dir=str(state_dir),
            )
        )
        found = Installed(stack, home, env)
        replayed = found.run("governor replay infra/sample-events.ndjson")
        assert replayed.returncode == 0, replayed.stderr
        yield found
    os.environ.clear()
    os.environ.update(saved)


def readme_examples() -> list[tuple[str, int]]:
    """Every line of the README's ```sh blocks that runs `governor` (or .venv/bin/governor), with the
    exit code a trailing `# exit N` documents (else 0). `governor local` serves until stopped: not run."""
    found = []
    in_sh = False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            in_sh = line.strip() == "```sh" and not in_sh
            continue
        if (
            in_sh
            and re.match(r"(\.venv/bin/)?governor ", line)
            and not re.match(r"(\.venv/bin/)?governor local\b", line)
        ):
            documented = re.search(r"#\s*exit (\d+)\b", line)
            found.append((line, int(documented[1]) if documented else 0))
    return found


def test_the_readme_has_examples_of_the_command() -> None:
    lines = [line for line, _ in readme_examples()]
    assert any(line.startswith("governor decisions") for line in lines)
    assert any(line.startswith("governor export") for line in lines)


@pytest.mark.parametrize(("line", "code"), readme_examples())
def test_each_readme_example_works_as_documented(installed: Installed, line: str, code: int) -> None:
    # Given the stack `make run` leaves (the sample replayed), When the README's line is run as written
    result = installed.run(line)
    # Then it ends as the README says, without a traceback
    assert result.returncode == code, f"{line}\nstdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr


def test_another_port_works_without_flags_through_the_state_file(installed: Installed) -> None:
    # Given a stack on a free port (not 8765) whose address is in the state file, and no --url or GOVERNOR_URL
    assert installed.stack.port != 8765
    # When a command runs without flags
    result = installed.run("governor stats --from 2026-10-26 --to 2026-11-22 -o json")
    # Then it reached that stack
    assert result.returncode == 0, result.stderr
    assert '"total"' in result.stdout
    # And when the state file is gone and nothing else is set, the error says what was tried and what to do
    gone = installed.run("GOVERNOR_STATE_DIR=/nonexistent-governor-state governor --url http://127.0.0.1:9 stats")
    assert gone.returncode == 4
    assert "cannot reach the governor API at http://127.0.0.1:9" in gone.stderr and "from --url" in gone.stderr


def test_a_closed_pipe_ends_quietly_with_141(installed: Installed) -> None:
    # Given an export longer than what the reader takes, When the reader goes away after one line
    result = installed.run(
        'governor export --from 2026-10-01 --to 2026-11-30 --format csv | head -1; echo "governor: ${PIPESTATUS[0]}"',
        timeout=120,
    )
    # Then the first line arrived, nothing was said about the pipe, and the exit code is the one a
    # shell reports for a tool SIGPIPE ended (128 + 13), not 1 ("refused")
    assert result.stdout.startswith("decision_id,")
    assert result.stdout.splitlines()[-1] == "governor: 141"
    assert result.stderr == ""


def test_python_dash_m_cli_is_the_same_command(installed: Installed) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "--version"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout.startswith("governor ")
    assert installed.run("governor --version").stdout == result.stdout
