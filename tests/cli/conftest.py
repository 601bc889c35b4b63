"""Local stacks for the command line's tests, and a way to run `governor` as a user does."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.app import governor
from infra.local.stack import LocalGovernor, running


@pytest.fixture(scope="module")
def event_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGovernor]:
    """One stack per module on free ports, on the event clock: recorded traffic of any age is decided
    as of its own time, so ranges of months can be filled in a second."""
    yield from local_stack(tmp_path_factory, "event")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGovernor]:
    """One stack per module on free ports, on the wall clock."""
    yield from local_stack(tmp_path_factory, "wall")


def local_stack(tmp_path_factory: pytest.TempPathFactory, clock: str) -> Iterator[LocalGovernor]:
    """A stack whose state file is in a temporary folder, so parallel test workers never share one."""
    saved = dict(os.environ)
    os.environ["GOVERNOR_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    with running(port=0, clock=clock, log_to=None) as local:
        yield local
    os.environ.clear()
    os.environ.update(saved)


def post(stack: LocalGovernor, details: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{stack.url}/events",
        data=json.dumps({"events": details}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert answer.status == 202
        assert json.loads(answer.read())["failed"] == []
    assert stack.wait_drained(timeout=60)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """`governor ARGS` in this process, stdout and stderr kept apart."""
    return CliRunner().invoke(governor, list(args), env=env, catch_exceptions=False)
