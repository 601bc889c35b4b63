"""The one backoff of the decide path's retry loops: full jitter, growing, capped (issue 10, item 5)."""

from __future__ import annotations

import statistics

from shared.adapters import retry


def test_waits_are_random_below_a_ceiling_that_doubles_up_to_the_cap() -> None:
    # Given many waits drawn for each attempt
    for attempt in range(12):
        waits = [retry.delay(attempt) for _ in range(400)]
        ceiling = min(retry.CAP_SECONDS, retry.BASE_SECONDS * 2**attempt)
        # Then each lies in [0, ceiling): full jitter, never longer than the cap
        assert all(0 <= w <= ceiling for w in waits)
        # And they are spread over the range rather than in step (deciders that collided do not collide again)
        assert len(set(waits)) == len(waits)
        assert 0.35 * ceiling < statistics.mean(waits) < 0.65 * ceiling


def test_backoff_sleeps_through_the_injectable_sleep() -> None:
    waited: list[float] = []
    retry.use_sleep(waited.append)
    try:
        retry.backoff(3)
    finally:
        retry.use_sleep(None)
    assert len(waited) == 1
    assert 0 <= waited[0] <= retry.BASE_SECONDS * 8
