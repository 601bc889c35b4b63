"""One backoff for every retry loop of the decide path: full-jitter exponential.

Deciders that collided (a TransactionConflict, a throttled batch read, a partial PutEvents, a
counter transaction) would collide again if they retried in step; a random wait up to an
exponentially growing cap spreads them out (AWS's "full jitter"). Bounded by the callers' own
attempt counts, and small enough to stay far inside a Lambda timeout.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

BASE_SECONDS = 0.02
CAP_SECONDS = 1.0

_sleep: Callable[[float], None] = time.sleep


def delay(attempt: int) -> float:
    """A random wait in [0, min(cap, base * 2**attempt)); attempt counts from 0."""
    ceiling = min(CAP_SECONDS, BASE_SECONDS * 2 ** min(attempt, 16))
    return random.uniform(0, ceiling)  # noqa: S311 - spreading load, not security


def backoff(attempt: int) -> None:
    _sleep(delay(attempt))


def use_sleep(sleep: Callable[[float], None] | None) -> None:
    """Tests record the waits instead of sleeping; None restores time.sleep."""
    global _sleep
    _sleep = sleep or time.sleep
