from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from infra.local.stack import LocalGovernor, running

# Every stack these tests start announces its address (and may keep its state) in the state
# directory: one of its own per test process, never the user's ~/.local/state, never shared by
# parallel workers. Subprocesses (`python -m cli ...`) inherit it.
os.environ["GOVERNOR_STATE_DIR"] = tempfile.mkdtemp(prefix="governor-state-")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalGovernor]:
    """One local stack per test module, on free ports, in this process."""
    saved = dict(os.environ)
    with running(port=0, log_to=None) as local:
        yield local
    os.environ.clear()
    os.environ.update(saved)
