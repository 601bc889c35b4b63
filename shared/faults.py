"""Named points of the decide path and of the log stream function where a test can make the
process die.

Production never installs a hook: `checkpoint` is a single `is None` check. The crash tests
(tests/proof/test_crash_injection.py) kill the path after each step in turn and redeliver (the
queue's message, the stream's batch), to show that no decision is lost or doubled and no counter
moves twice.
"""

from __future__ import annotations

from collections.abc import Callable

AFTER_COMMIT = "after_commit"  # the ledger slot and the log entry commit together, so this is after both
AFTER_PUBLISH = "after_publish"  # the log stream function published a batch, not counted yet
AFTER_COUNT = "after_count"  # ... and counted it, not answered yet
BEFORE_ACKNOWLEDGE = "before_acknowledge"
POINTS = (AFTER_COMMIT, AFTER_PUBLISH, AFTER_COUNT, BEFORE_ACKNOWLEDGE)

_hook: Callable[[str], None] | None = None


def checkpoint(name: str) -> None:
    if _hook is not None:
        _hook(name)


def install(hook: Callable[[str], None] | None) -> None:
    global _hook
    _hook = hook
