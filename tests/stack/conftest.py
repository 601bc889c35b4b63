from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from infra.local.stack import LocalGovernor, running


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalGovernor]:
    """One local stack per test module, on free ports, in this process."""
    saved = dict(os.environ)
    with running(port=0, log_to=None) as local:
        yield local
    os.environ.clear()
    os.environ.update(saved)
